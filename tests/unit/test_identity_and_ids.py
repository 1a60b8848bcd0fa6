from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confide._json import dumps
from confide.services._identity import Role, RoleKind, parse_role, role_from_request
from confide.services._records import parse_id
from confide.services.authentication._tokens import TokenError, TokenSigner


@pytest.mark.parametrize(("text", "kind", "attr"), [
    ("PlatformAdmin", RoleKind.PLATFORM_ADMIN, ""),
    ("FunctionOwner", RoleKind.FUNCTION_OWNER, ""),
    ("DataOwner-org-1", RoleKind.DATA_OWNER, "org-1"),
    ("DataOwnerManager-a", RoleKind.DATA_OWNER_MANAGER, "a"),
    ("DataOwner-", RoleKind.DATA_OWNER, ""),
    ("DataOwner", RoleKind.INVALID, ""),
    ("platformadmin", RoleKind.INVALID, ""),
])
def test_role_parsing(text: str, kind: RoleKind, attr: str) -> None:
    role = parse_role(text)
    assert (role.kind, role.attribute) == (kind, attr)


def test_role_round_trip_and_invalid_request_roles() -> None:
    r = role_from_request("DataOwnerManager", "x")
    assert r == Role(RoleKind.DATA_OWNER_MANAGER, "x") and parse_role(r.canonical) == r
    assert role_from_request("Invalid", "") is None and role_from_request("", "") is None
    assert r.debug() == 'DataOwnerManager("x")'


def test_id_parsing_accepts_teaclave_spellings() -> None:
    u = "7b0f9a3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
    assert parse_id(f"task-{u}") == f"task-{u}"
    assert parse_id(f"task-{u.upper()}") == f"task-{u}"
    assert parse_id(f"task-{u.replace('-', '')}") == f"task-{u}"
    for bad in ("task", "task-", f"task{u}", f"task-{{{u}}}", f"task-urn:uuid:{u}", "x" * 200):
        assert parse_id(bad) is None


@given(st.uuids(), st.sampled_from(["task", "function", "input", "output"]))
def test_id_parsing_is_canonical(u: object, kind: str) -> None:
    assert parse_id(f"{kind}-{str(u).upper()}") == f"{kind}-{u}"


def test_json_rendering_follows_serde_json() -> None:
    text = dumps({"b": 1, "a": [1.0, 0.1, True, None, "é"]})
    assert text == '{"a":[1.0,0.1,true,null,"é"],"b":1}'
    assert dumps(1e15) == "1000000000000000.0" and dumps(1e16) == "1e16"
    assert dumps(1.5e-7) == "1.5e-7" and dumps(0.00001) == "0.00001"
    with pytest.raises(ValueError):
        dumps(float("nan"))


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_json_float_text_round_trips(x: float) -> None:
    assert float(dumps(x)) == x


def test_tokens_expire_and_bind_the_user() -> None:
    signer = TokenSigner(b"k" * 64, lifetime_s=10)
    token = signer.issue("alice", "DataOwner-a", 0, now=100.0)
    assert signer.verify(token, "alice", now=109.0).sub == "alice"
    with pytest.raises(TokenError):
        signer.verify(token, "alice", now=110.0)
    with pytest.raises(TokenError):
        signer.verify(token, "bob", now=100.0)
    with pytest.raises(TokenError):
        TokenSigner(b"j" * 64, 10).verify(token, "alice", now=100.0)
    with pytest.raises(TokenError):
        signer.verify(token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1], "alice",
                      now=100.0)


def test_verified_token_cache_keeps_every_check() -> None:
    signer = TokenSigner(b"k" * 64, lifetime_s=10)
    token = signer.issue("alice", "DataOwner-a", 3, now=100.0)
    forged = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for _ in range(2):  # the second round is answered from the cache
        assert signer.verify(token, "alice", now=105.0).gen == 3
        with pytest.raises(TokenError, match="subject"):
            signer.verify(token, "bob", now=105.0)
        with pytest.raises(TokenError, match="expired"):
            signer.verify(token, "alice", now=110.0)
        with pytest.raises(TokenError, match="invalid token"):
            signer.verify(forged, "alice", now=105.0)  # a failure is never remembered
    for i in range(5000):  # more tokens than the cache holds: it starts over, still correct
        signer.verify(signer.issue(f"u{i}", "DataOwner-a", 0, now=100.0), f"u{i}", now=101.0)
    assert signer.verify(token, "alice", now=105.0).sub == "alice"
