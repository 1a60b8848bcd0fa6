"""Session tokens: HS512 JWTs signed with a key derived from the platform secret.

Because the key is derived (not random per start), tokens survive a restart
(Teaclave's tokens did not, spec Q11). A ``gen`` claim ties a token to the
user's credential generation, so changing or resetting a password, updating a
user or deleting it revokes every token issued before.
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt

__all__ = ["Claims", "TokenError", "TokenSigner"]

ISSUER = "Teaclave"  # what Teaclave's tokens carry; clients treat tokens as opaque
_ALGORITHM = "HS512"


class TokenError(Exception):
    """A token is invalid, expired or not for this user."""


@dataclass(frozen=True)
class Claims:
    sub: str
    role: str
    exp: int
    gen: int


class TokenSigner:
    def __init__(self, key: bytes, lifetime_s: int) -> None:
        if len(key) < 64:
            raise ValueError("HS512 token key must be at least 64 bytes")
        self._key = key
        self.lifetime_s = lifetime_s

    def issue(self, user_id: str, role: str, gen: int, *, now: float) -> str:
        claims = {"sub": user_id, "role": role, "iss": ISSUER, "exp": int(now) + self.lifetime_s,
                  "gen": gen}
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM)

    def verify(self, token: str, user_id: str, *, now: float) -> Claims:
        """Check signature, algorithm, issuer, subject and expiry at ``now``."""
        try:
            raw = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                issuer=ISSUER,
                options={"verify_exp": False, "require": ["sub", "role", "iss", "exp", "gen"]},
            )
        except jwt.PyJWTError as e:
            raise TokenError(f"invalid token: {e}") from e
        exp, gen = raw["exp"], raw["gen"]
        if not isinstance(exp, int) or not isinstance(gen, int):
            raise TokenError("invalid token claims")
        if exp <= now:
            raise TokenError("token expired")
        if raw["sub"] != user_id:
            raise TokenError("token subject does not match the user id")
        return Claims(sub=str(raw["sub"]), role=str(raw["role"]), exp=exp, gen=gen)
