"""Session tokens: HS512 JWTs signed with a key derived from the platform secret.

Because the key is derived (not random per start), tokens survive a restart
(Teaclave's tokens did not, spec Q11). A ``gen`` claim ties a token to the
user's credential generation, so changing or resetting a password, updating a
user or deleting it revokes every token issued before.

Verifying an HS512 JWT costs more than the rest of an authenticated call's
checks, and clients send the same token on every call, so a token whose
signature verified is remembered (by its SHA-256) with its claims. Expiry and
subject are still checked on every call, and the caller still compares
``gen`` with the stored user, so revocation is as immediate as without the cache.

Key rotation (``confide.keys``): a token's header names the key that signed it
(``kid``: ``token-<version>``), and a token without one (issued before the
keyring) was signed by version 1. Tokens are issued under the active key; one
signed by an older key verifies until it expires, since older keys stay in the
ring. The ``kid`` is covered by the signature: a changed one fails.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

import jwt

from ...crypto.records import VersionedKey, as_versioned
from ...keys import KeysError, parse_kid

__all__ = ["Claims", "TokenError", "TokenSigner"]

ISSUER = "Teaclave"  # what Teaclave's tokens carry; clients treat tokens as opaque
_ALGORITHM = "HS512"
_VERIFIED_CACHE = 4096  # tokens remembered; the whole cache is dropped when full


class TokenError(Exception):
    """A token is invalid, expired or not for this user."""


@dataclass(frozen=True)
class Claims:
    sub: str
    role: str
    exp: int
    gen: int


class TokenSigner:
    def __init__(self, key: bytes | VersionedKey, lifetime_s: int) -> None:
        self._keys = as_versioned(key)
        if len(self._keys.active()[1]) < 64:
            raise ValueError("HS512 token key must be at least 64 bytes")
        self.lifetime_s = lifetime_s
        self._verified: dict[bytes, Claims] = {}
        self._lock = threading.Lock()

    def issue(self, user_id: str, role: str, gen: int, *, now: float) -> str:
        claims = {"sub": user_id, "role": role, "iss": ISSUER, "exp": int(now) + self.lifetime_s,
                  "gen": gen}
        version, key = self._keys.active()
        return jwt.encode(claims, key, algorithm=_ALGORITHM,
                          headers={"kid": f"token-{version}"})

    def verify(self, token: str, user_id: str, *, now: float) -> Claims:
        """Check signature, algorithm, issuer, subject and expiry at ``now``."""
        digest = hashlib.sha256(token.encode()).digest()
        claims = self._verified.get(digest)
        if claims is None:
            claims = self._decode(token)
            with self._lock:
                if len(self._verified) >= _VERIFIED_CACHE:
                    self._verified.clear()
                self._verified[digest] = claims
        if claims.exp <= now:
            raise TokenError("token expired")
        if claims.sub != user_id:
            raise TokenError("token subject does not match the user id")
        return claims

    def _decode(self, token: str) -> Claims:
        """Signature, algorithm, issuer and claim types; not expiry or subject."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            version = 1 if kid is None else parse_kid(kid, "token")
        except (jwt.PyJWTError, KeysError) as e:
            raise TokenError(f"invalid token: {e}") from e
        key = self._keys.key(version)
        if key is None:
            raise TokenError(f"invalid token: signed by an unknown key (token-{version})")
        try:
            raw = jwt.decode(
                token,
                key,
                algorithms=[_ALGORITHM],
                issuer=ISSUER,
                options={"verify_exp": False, "require": ["sub", "role", "iss", "exp", "gen"]},
            )
        except jwt.PyJWTError as e:
            raise TokenError(f"invalid token: {e}") from e
        exp, gen = raw["exp"], raw["gen"]
        if not isinstance(exp, int) or not isinstance(gen, int):
            raise TokenError("invalid token claims")
        return Claims(sub=str(raw["sub"]), role=str(raw["role"]), exp=exp, gen=gen)
