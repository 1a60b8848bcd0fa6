"""Authentication (users, passwords, sessions; spec §3.3), without gRPC, on the storage seam.

A token proves one user's session and nothing more: the role comes from the
stored user, and any change of credentials revokes the sessions before it.
Accounts are managed only within the rules of spec §3.3 (Q14, Q15, Q27 fixed).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from confide.config import Limits
from confide.errors import Code
from confide.services._identity import Principal, Role, RoleKind
from confide.services.audit import AuditLog
from confide.services.authentication import AuthenticationService, TokenSigner
from confide.services.authentication._throttle import LoginThrottle
from confide.storage import Database

from ._auth_support import Clock
from ._services import admin, refused, sqlite_database

TOKEN_LIFETIME_S = 3600
FAILED = "authentication failed"
IP = bytes(12) + bytes([10, 0, 0, 1])  # ::10.0.0.1, the audit log's IPv4 form


class Auth:
    """The service as a node starts it, with a cheap hasher and a clock the test moves."""

    def __init__(self, db: Database, keys: tuple[bytes, bytes] | None = None) -> None:
        self.db = db
        self.clock = Clock()
        self.key, audit_key = keys or (os.urandom(64), os.urandom(32))
        self.keys = (self.key, audit_key)
        limits = Limits()
        self.service = AuthenticationService(
            db, TokenSigner(self.key, TOKEN_LIFETIME_S), clock=self.clock, limits=limits,
            audit=AuditLog(db, audit_key, clock=self.clock),
            hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
            throttle=LoginThrottle(limits, self.clock))
        self.service.index_user_names()
        self.service.ensure_admin("admin", "admin-password")

    def login(self, user_id: str, password: str) -> str:
        return self.service.login(user_id, password, ip=IP)

    def add(self, user_id: str, role: str, attribute: str = "", password: str = "pw") -> None:
        self.service.register(admin(), user_id, password, role, attribute)

    def session(self, user_id: str, password: str = "pw") -> str:
        return self.login(user_id, password)

    def principal(self, user_id: str, password: str = "pw") -> Principal:
        return self.service.authenticate(user_id, self.session(user_id, password))


@pytest.fixture
def auth(tmp_path: Path) -> Auth:
    return Auth(sqlite_database(tmp_path))


def _manager(attribute: str = "bank-a") -> Principal:
    return Principal("manager", Role(RoleKind.DATA_OWNER_MANAGER, attribute))


# -- sessions --------------------------------------------------------------------
def test_a_session_authenticates_its_user_with_the_stored_role(auth: Auth) -> None:
    auth.add("alice", "DataOwner", "bank-a")
    assert auth.principal("alice") == Principal("alice", Role(RoleKind.DATA_OWNER, "bank-a"))


def test_a_token_does_not_authenticate_another_user(auth: Auth) -> None:
    auth.add("alice", "DataOwner", "bank-a")
    auth.add("bob", "DataOwner", "bank-b")
    token = auth.session("alice")
    with refused(Code.UNAUTHENTICATED, FAILED):
        auth.service.authenticate("bob", token)


def test_wrong_password_and_unknown_user_fail_alike(auth: Auth) -> None:
    auth.add("alice", "DataOwner", "bank-a")
    for user_id, password in (("alice", "wrong"), ("nobody", "pw"), ("alice", "")):
        with refused(Code.UNAUTHENTICATED, FAILED):
            auth.login(user_id, password)


def test_role_claimed_in_a_token_is_not_trusted(auth: Auth) -> None:
    """Spec Q15 fix: a token whose claims say PlatformAdmin grants the stored role only."""
    auth.add("alice", "DataOwner", "bank-a")
    forged = TokenSigner(auth.key, TOKEN_LIFETIME_S).issue("alice", "PlatformAdmin", 0,
                                                           now=auth.clock())
    assert auth.service.authenticate("alice", forged).role == Role(RoleKind.DATA_OWNER, "bank-a")


def test_token_of_another_platform_key_is_refused(auth: Auth) -> None:
    auth.add("alice", "DataOwner", "bank-a")
    foreign = TokenSigner(os.urandom(64), TOKEN_LIFETIME_S).issue("alice", "DataOwner-bank-a", 0,
                                                                  now=auth.clock())
    with refused(Code.UNAUTHENTICATED, FAILED):
        auth.service.authenticate("alice", foreign)


def test_expired_session_is_refused(auth: Auth) -> None:
    auth.add("alice", "DataOwner", "bank-a")
    token = auth.session("alice")
    auth.clock.advance(TOKEN_LIFETIME_S + 1)
    with refused(Code.UNAUTHENTICATED, FAILED):
        auth.service.authenticate("alice", token)


def test_password_change_revokes_earlier_sessions(auth: Auth) -> None:
    auth.add("alice", "DataOwner", "bank-a")
    old = auth.session("alice")
    alice = auth.service.authenticate("alice", old)
    auth.service.change_password(alice, "new-pw")
    with refused(Code.UNAUTHENTICATED, FAILED):
        auth.service.authenticate("alice", old)
    with refused(Code.UNAUTHENTICATED, FAILED):
        auth.login("alice", "pw")
    assert auth.principal("alice", "new-pw").role.kind is RoleKind.DATA_OWNER


def test_role_change_revokes_earlier_sessions(auth: Auth) -> None:
    auth.add("alice", "DataOwner", "bank-a")
    old = auth.session("alice")
    auth.service.update(admin(), "alice", "pw", "DataOwnerManager", "bank-a")
    with refused(Code.UNAUTHENTICATED, FAILED):
        auth.service.authenticate("alice", old)


def test_deleted_users_session_is_refused(auth: Auth) -> None:
    auth.add("alice", "DataOwner", "bank-a")
    token = auth.session("alice")
    auth.service.delete(admin(), "alice")
    with refused(Code.UNAUTHENTICATED, FAILED):
        auth.service.authenticate("alice", token)


def test_a_reset_password_revokes_sessions_and_is_the_only_one_that_works(auth: Auth) -> None:
    auth.add("alice", "DataOwner", "bank-a")
    token = auth.session("alice")
    new_password = auth.service.reset_password(admin(), "alice")
    with refused(Code.UNAUTHENTICATED, FAILED):
        auth.service.authenticate("alice", token)
    with refused(Code.UNAUTHENTICATED, FAILED):
        auth.login("alice", "pw")
    auth.principal("alice", new_password)


def test_restart_keeps_the_administrator_password(tmp_path: Path) -> None:
    """ensure_admin runs at every start: it creates the administrator, never resets it."""
    db = sqlite_database(tmp_path)
    first = Auth(db)
    first.service.change_password(first.principal("admin", "admin-password"), "rotated")
    again = Auth(db, first.keys)
    assert not again.service.ensure_admin("admin", "admin-password")
    with refused(Code.UNAUTHENTICATED, FAILED):
        again.login("admin", "admin-password")
    again.principal("admin", "rotated")


# -- account management (spec §3.3) ----------------------------------------------
@pytest.mark.parametrize(("caller", "role", "attribute", "allowed"), [
    (Role(RoleKind.PLATFORM_ADMIN), "PlatformAdmin", "", True),
    (Role(RoleKind.FUNCTION_OWNER), "DataOwnerManager", "bank-a", True),
    (Role(RoleKind.FUNCTION_OWNER), "PlatformAdmin", "", False),
    (Role(RoleKind.FUNCTION_OWNER), "FunctionOwner", "", False),
    (Role(RoleKind.DATA_OWNER_MANAGER, "bank-a"), "DataOwner", "bank-a", True),
    (Role(RoleKind.DATA_OWNER_MANAGER, "bank-a"), "DataOwner", "bank-b", False),
    (Role(RoleKind.DATA_OWNER_MANAGER, "bank-a"), "DataOwnerManager", "bank-a", False),
    (Role(RoleKind.DATA_OWNER, "bank-a"), "DataOwner", "bank-a", False),
])
def test_who_may_register_whom(auth: Auth, caller: Role, role: str, attribute: str,
                               allowed: bool) -> None:
    register = lambda: auth.service.register(  # noqa: E731
        Principal("caller", caller), "newcomer", "pw", role, attribute)
    if allowed:
        register()
        assert auth.service.role_of("newcomer") is not None
    else:
        with refused(Code.UNAUTHENTICATED, "permission denied"):
            register()
        assert auth.service.role_of("newcomer") is None


def test_an_existing_user_cannot_be_registered_over(auth: Auth) -> None:
    auth.add("alice", "DataOwner", "bank-a")
    with refused(Code.UNAUTHENTICATED, "user id exist"):
        auth.service.register(admin(), "alice", "mine-now", "PlatformAdmin", "")
    assert auth.principal("alice").role.kind is RoleKind.DATA_OWNER


def test_manager_cannot_take_over_a_user_outside_its_data_owners(auth: Auth) -> None:
    """Spec Q14 fix: a DataOwnerManager updates only its own data owners."""
    auth.add("fo", "FunctionOwner")
    auth.add("other", "DataOwner", "bank-b")
    for user_id in ("fo", "other", "admin"):
        with refused(Code.UNAUTHENTICATED, "permission denied"):
            auth.service.update(_manager(), user_id, "taken", "DataOwner", "bank-a")
    assert auth.principal("fo").role.kind is RoleKind.FUNCTION_OWNER


def test_manager_cannot_promote_its_data_owner(auth: Auth) -> None:
    auth.add("alice", "DataOwner", "bank-a")
    with refused(Code.UNAUTHENTICATED, "permission denied"):
        auth.service.update(_manager(), "alice", "pw", "PlatformAdmin", "")


def test_unknown_and_foreign_users_are_refused_alike(auth: Auth) -> None:
    """Spec Q27 fix: reset and delete do not tell a missing id from a foreign one."""
    auth.add("other", "DataOwner", "bank-b")
    for user_id in ("other", "nobody"):
        with refused(Code.UNAUTHENTICATED, "permission denied"):
            auth.service.reset_password(_manager(), user_id)
        with refused(Code.UNAUTHENTICATED, "permission denied"):
            auth.service.delete(_manager(), user_id)


def test_manager_lists_only_its_data_owners(auth: Auth) -> None:
    auth.add("alice", "DataOwner", "bank-a")
    auth.add("bob", "DataOwner", "bank-b")
    auth.add("carol", "DataOwnerManager", "bank-a")
    assert auth.service.list_users(_manager(), "bank-a") == ["alice"]
    with refused(Code.UNAUTHENTICATED, "permission denied"):
        auth.service.list_users(_manager(), "bank-b")
    assert auth.service.list_users(admin(), "admin") == ["admin", "alice", "bob", "carol"]


# -- the database is untrusted ----------------------------------------------------
def test_operator_cannot_make_a_user_administrator_in_the_database(auth: Auth) -> None:
    """Copying the administrator's sealed row over alice's is refused, not obeyed."""
    auth.add("alice", "DataOwner", "bank-a")
    with sqlite3.connect(auth.db.url.removeprefix("sqlite:///")) as c:
        body = c.execute("select body from users where id = 'admin'").fetchone()[0]
        c.execute("update users set body = ? where id = 'alice'", (body,))
    with refused(Code.UNAUTHENTICATED):
        auth.login("alice", "admin-password")
    assert auth.service.role_of("admin") == Role(RoleKind.PLATFORM_ADMIN)


def test_authenticate_cached_never_reads_the_database_and_keeps_every_check(
        auth: Auth) -> None:
    auth.add("alice", "PlatformAdmin")
    token = auth.session("alice")
    auth.service._forget("alice")  # type: ignore[attr-defined]
    assert auth.service.authenticate_cached("alice", token) is None  # not cached: ask the DB
    assert auth.service.authenticate("alice", token).role.kind is RoleKind.PLATFORM_ADMIN
    loads: list[str] = []
    real_load = auth.service._load  # type: ignore[attr-defined]
    auth.service._load = lambda user_id: loads.append(user_id) or real_load(user_id)  # type: ignore[attr-defined]
    who = auth.service.authenticate_cached("alice", token)
    assert who is not None and who.user_id == "alice" and loads == []
    with refused(Code.UNAUTHENTICATED, FAILED):  # another user's token
        auth.service.authenticate_cached("admin", token)
    with refused(Code.UNAUTHENTICATED, FAILED):  # a forged token
        auth.service.authenticate_cached("alice", token[:-2] + ("AA" if token[-2:] != "AA"
                                                                  else "BB"))
    assert loads == []
    auth.service.change_password(Principal("alice", Role(RoleKind.PLATFORM_ADMIN)), "pw2")
    assert auth.service.authenticate_cached("alice", token) is None  # forgotten: ask the DB
    with refused(Code.UNAUTHENTICATED, FAILED):  # the session before the change is revoked
        auth.service.authenticate("alice", token)
    with refused(Code.UNAUTHENTICATED, FAILED):  # and stays so once cached again
        auth.service.authenticate_cached("alice", token)
