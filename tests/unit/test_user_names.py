"""New user ids, attributes and function names follow the naming rules, and user
ids are unique ignoring case, also for data from before the rules (issue 10, item 4)."""

from __future__ import annotations

import sqlite3
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confide.config import Limits
from confide.crypto.records import RecordSealer
from confide.errors import Code, ServiceError
from confide.services._identity import Principal, Role, RoleKind
from confide.services._names import name_key, name_problem
from confide.storage import SCHEMA_VERSION, Conflict, Database

from ._auth_support import IP_A, Auth, make_auth

# Ids Teaclave's examples, tests and ordinary clients register: they must keep working.
ORDINARY = ["teaclave", "user0", "user_a", "frontend_user", "rsa_sign_user1", "alice@example.com",
            "first.last", "org-1_x", "a+b", "John Smith", "Ωmega", "日本語", "josé", "x" * 256]


@pytest.fixture
def auth(tmp_path: Path) -> Auth:
    return make_auth(f"sqlite:///{tmp_path / 'auth.db'}")


def _refusal(auth: Auth, user_id: str, **kw: str) -> ServiceError:
    with pytest.raises(ServiceError) as e:
        auth.register(user_id, **kw)
    return e.value


@pytest.mark.parametrize("user_id", ORDINARY)
def test_ordinary_teaclave_style_ids_register_and_log_in(auth: Auth, user_id: str) -> None:
    auth.register(user_id, "pw")
    assert auth.service.login(user_id, "pw", ip=IP_A)


@pytest.mark.parametrize(("user_id", "rule"), [
    ("ADMIN", "unique ignoring case"),
    ("Admin", "unique ignoring case"),
    ("\uff41\uff44\uff4d\uff49\uff4e", "unique ignoring case"),  # full-width "admin"
    ("admin ", "leading or trailing whitespace"),
    (" admin", "leading or trailing whitespace"),
    ("admin\u00a0", "leading or trailing whitespace"),
    ("a\x00b", "U+0000 (a control character)"),
    ("a\tb", "U+0009 (a control character)"),
    ("\u202eevil", "U+202E (a format character: bidi control"),
    ("ev\u2066il", "U+2066 (a format character"),
    ("ad\u200bmin", "U+200B (a format character"),
    ("ad\u200dmin", "U+200D (a format character"),
    ("ad\ufeffmin", "U+FEFF (a format character"),
    ("a\u2028b", "U+2028 (a line separator)"),
    ("a\ue000b", "U+E000 (a private-use character)"),
    ("a\U000e0041b", "U+E0041 (a format character"),  # tag characters
    ("a\u3164b", "U+3164 (an invisible character)"),  # Hangul filler
    ("heart\u2764\ufe0f", "U+FE0F (an invisible character)"),
    ("jose\u0301", "not in Unicode normalisation form NFC"),
    ("x" * 257, "longer than 256 characters"),
])
def test_rejects_registration_that_breaks_a_naming_rule(auth: Auth, user_id: str,
                                                        rule: str) -> None:
    e = _refusal(auth, user_id)
    assert e.code is Code.INVALID_ARGUMENT
    assert e.message.startswith("invalid user id: ") and rule in e.message


def test_exact_duplicate_keeps_teaclaves_answer(auth: Auth) -> None:
    e = _refusal(auth, "admin")
    assert (e.code, e.message) == (Code.UNAUTHENTICATED, "user id exist")


def test_empty_id_keeps_teaclaves_answer(auth: Auth) -> None:
    e = _refusal(auth, "")
    assert (e.code, e.message) == (Code.UNAUTHENTICATED, "invalid user id")


def test_id_length_cap_is_exact(tmp_path: Path) -> None:
    auth = make_auth(f"sqlite:///{tmp_path / 'a.db'}", limits=Limits(max_id_chars=8))
    auth.register("x" * 8)
    assert "longer than 8 characters" in _refusal(auth, "y" * 9).message


@pytest.mark.parametrize(("attribute", "rule"), [
    ("org1 ", "leading or trailing whitespace"), ("\u202eorg", "U+202E"),
    ("o\x00rg", "U+0000"), ("ORG" + "x" * 254, "longer than 256"),
])
def test_rejects_data_owner_attribute_that_breaks_a_naming_rule(auth: Auth, attribute: str,
                                                               rule: str) -> None:
    e = _refusal(auth, "carol", role="DataOwner", attribute=attribute)
    assert e.code is Code.INVALID_ARGUMENT
    assert e.message.startswith("invalid attribute: ") and rule in e.message


def test_ignored_attribute_and_empty_attribute_stay_accepted(auth: Auth) -> None:
    auth.register("dave", role="PlatformAdmin", attribute="\u202eignored")  # Teaclave ignores it
    auth.register("erin", role="DataOwner", attribute="")  # "may be empty" (spec §3.1)
    auth.register("frank", role="DataOwnerManager", attribute="org-1")


def test_update_checks_only_a_new_attribute(auth: Auth) -> None:
    """A user stored with an attribute from before the rules can still be updated."""
    with auth.db.write() as txn:  # a row from before the rules
        txn.insert("users", "legacy", {"hash": "x", "role": "DataOwner-\u202eorg", "gen": 0})
    auth.service.update(Principal("admin", Role(RoleKind.PLATFORM_ADMIN)), "legacy", "pw",
                        "DataOwner", "\u202eorg")
    with pytest.raises(ServiceError, match="invalid attribute: contains U\\+202E"):
        auth.service.update(Principal("admin", Role(RoleKind.PLATFORM_ADMIN)), "legacy", "pw",
                            "DataOwner", "\u202eother")


def _legacy_db(tmp_path: Path) -> str:
    """A schema-v1 database holding users that break today's rules."""
    url = f"sqlite:///{tmp_path / 'legacy.db'}"
    db = Database(url, RecordSealer(b"s" * 32))
    with db.write() as txn:
        for uid in ("admin ", "ADMIN", "a\x00b"):
            txn.insert("users", uid, {"hash": "x", "role": "PlatformAdmin", "gen": 0})
    db.close()
    with sqlite3.connect(tmp_path / "legacy.db") as c:  # back to v1 before Alembic
        v1 = {"meta", "users", "functions", "files", "tasks", "queue", "audit"}
        tables = [r[0] for r in c.execute("select name from sqlite_master where type = 'table'")]
        for table in set(tables) - v1:  # user_names, alembic_version and every later table
            c.execute(f'drop table "{table}"')
        c.execute("update meta set value = ? where key = 'schema_version'", (b"1",))
    return url


def test_users_from_before_the_rules_keep_working_but_no_new_one_collides(
        tmp_path: Path) -> None:
    auth = make_auth(_legacy_db(tmp_path))  # migrates to v2 and indexes the old users
    assert Database(auth.db.url, RecordSealer(b"s" * 32)).migrate() == SCHEMA_VERSION
    admin = Principal("admin", Role(RoleKind.PLATFORM_ADMIN))
    for uid in ("admin ", "ADMIN", "a\x00b"):  # they can log in once given a password
        auth.service.update(admin, uid, "pw", "PlatformAdmin", "")
        assert auth.service.login(uid, "pw", ip=IP_A)
    # "admin" (bootstrap) now shares its key with "ADMIN"; nobody else may join.
    assert "unique ignoring case" in _refusal(auth, "Admin").message
    auth.service.delete(admin, "ADMIN")
    assert "unique ignoring case" in _refusal(auth, "Admin").message  # "admin" still holds it
    auth.service.delete(admin, "admin")
    auth.register("Admin")  # the name is free at last
    assert auth.service.index_user_names() == 0  # nothing left to index


def test_index_lists_every_holder_of_a_shared_key(tmp_path: Path) -> None:
    auth = make_auth(_legacy_db(tmp_path))
    with auth.db.read() as txn:
        row = txn.get("user_names", name_key("admin"))
    assert row is not None and sorted(row.body["users"]) == ["ADMIN", "admin"]


def test_database_refuses_a_second_row_for_the_same_name_key(auth: Auth) -> None:
    """The guarantee under concurrency: whatever checks ran, the second insert fails."""
    with pytest.raises(Conflict), auth.db.write() as txn:
        txn.insert("user_names", name_key("ADMIN"), {"users": ["ADMIN"]})


def test_a_lost_race_answers_like_the_check_would(auth: Auth,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """If another node registered the name between our check and our insert."""
    from confide.services.authentication import _service
    from confide.services.authentication._user_names import Claim

    auth.register("carol")
    monkeypatch.setattr(_service, "claim", lambda txn, uid: (
        txn.insert("user_names", name_key(uid), {"users": [uid]}), Claim.FREE)[1])
    assert "unique ignoring case" in _refusal(auth, "CAROL").message
    e = _refusal(auth, "carol")
    assert (e.code, e.message) == (Code.UNAUTHENTICATED, "user id exist")


def test_bootstrap_admin_name_must_follow_the_rules(tmp_path: Path) -> None:
    auth = make_auth(f"sqlite:///{tmp_path / 'a.db'}")
    with pytest.raises(ValueError, match="leading or trailing whitespace"):
        auth.service.ensure_admin("root ", "pw")
    assert auth.service.ensure_admin("admin", "pw") is False  # exists: nothing to check


@given(st.text(max_size=40))
def test_an_accepted_name_is_nfc_without_outer_space_or_invisible_characters(name: str) -> None:
    if name_problem(name, 256) is None:
        assert unicodedata.is_normalized("NFC", name) and name == name.strip()
        assert not any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in name)


@given(st.text(min_size=1, max_size=20))
def test_case_variants_share_a_name_key(name: str) -> None:
    assert name_key(name.upper().lower()) == name_key(name.lower())
    assert name_key(name.casefold()) == name_key(name)
