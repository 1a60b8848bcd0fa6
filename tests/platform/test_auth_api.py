"""Authentication API: every RPC's success and error paths (spec §3.3, §1.7)."""

from __future__ import annotations

import grpc
import pytest

from confide.client import ClientError
from confide.rpc._gen import teaclave_authentication_service_pb2 as pb

from ._helpers import expect_error
from ._server import Server

AUTH_FAILED = "authentication failed"


def test_login_failures_all_say_authentication_failed(server: Server) -> None:
    c = server.client()
    for user, pw in [("", "x"), ("admin", ""), ("nobody", "x"), ("admin", "wrong")]:
        expect_error("UNAUTHENTICATED", AUTH_FAILED, lambda u=user, p=pw: c.login(u, p))


def test_missing_metadata_is_reported(server: Server) -> None:
    c = server.client()
    req = pb.ListUsersRequest(id="x")
    with pytest.raises(grpc.RpcError) as e:
        c._auth.ListUsers(req)
    assert (e.value.code(), e.value.details()) == (grpc.StatusCode.UNAUTHENTICATED,
                                                   "missing user id")
    with pytest.raises(grpc.RpcError) as e:
        c._auth.ListUsers(req, metadata=[("id", "admin")])
    assert e.value.details() == "missing token"
    with pytest.raises(grpc.RpcError) as e:
        c._auth.ListUsers(req, metadata=[("id", "admin"), ("token", "forged")])
    assert e.value.details() == AUTH_FAILED


def test_token_of_one_user_does_not_work_for_another(server: Server) -> None:
    _, alice = server.new_user("DataOwner", "a")
    bob_id, _ = server.new_user("DataOwner", "a")
    alice.use_token(bob_id, alice._token or "")
    expect_error("UNAUTHENTICATED", AUTH_FAILED, lambda: alice.list_users("a"))


def test_register_rules(server: Server) -> None:
    admin = server.admin()
    reg = admin.register_user
    expect_error("UNAUTHENTICATED", "invalid user id", lambda: reg("", "p", "DataOwner"))
    expect_error("UNAUTHENTICATED", "user id exist", lambda: reg("admin", "p", "DataOwner"))
    expect_error("UNAUTHENTICATED", "invalid role", lambda: reg("zz-x", "p", "Boss"))
    # The SDK's default empty role fails (spec §3.3).
    expect_error("UNAUTHENTICATED", "invalid role", lambda: admin.register_user("zz-y", "p", ""))
    # An empty password is accepted; that user can never log in (Q26).
    admin.register_user("zz-empty-pw", "", "DataOwner", "q")
    expect_error("UNAUTHENTICATED", AUTH_FAILED, lambda: server.client("zz-empty-pw", ""))


@pytest.mark.parametrize(("caller", "new_role", "attr", "allowed"), [
    ("FunctionOwner", "DataOwnerManager", "any", True),
    ("FunctionOwner", "DataOwner", "any", False),
    ("FunctionOwner", "FunctionOwner", "", False),
    ("DataOwnerManager", "DataOwner", "m", True),
    ("DataOwnerManager", "DataOwner", "other", False),
    ("DataOwnerManager", "DataOwnerManager", "m", False),
    ("DataOwner", "DataOwner", "m", False),
    ("PlatformAdmin", "PlatformAdmin", "", True),
])
def test_who_may_register_whom(server: Server, caller: str, new_role: str, attr: str,
                               allowed: bool) -> None:
    _, c = server.new_user(caller, "m")
    import uuid

    target = f"reg-{uuid.uuid4().hex[:8]}"
    if allowed:
        c.register_user(target, "pw", new_role, attr)
    else:
        expect_error("UNAUTHENTICATED", "permission denied",
                     lambda: c.register_user(target, "pw", new_role, attr))


def test_data_owner_manager_scope(server: Server) -> None:
    _, mgr = server.new_user("DataOwnerManager", "bankx")
    mgr.register_user("bankx-1", "pw1", "DataOwner", "bankx")
    assert mgr.list_users("bankx") == ["bankx-1"]
    expect_error("UNAUTHENTICATED", "permission denied", lambda: mgr.list_users("banky"))
    new_pw = mgr.reset_user_password("bankx-1")
    assert len(new_pw) == 32 and all(ch in "0123456789abcdef" for ch in new_pw)
    server.client("bankx-1", new_pw)
    # Q14 fix: a manager cannot turn someone else (here: an admin) into its data owner.
    admin_id, _ = server.new_user("PlatformAdmin")
    expect_error("UNAUTHENTICATED", "permission denied",
                 lambda: mgr.update_user(admin_id, "x", "DataOwner", "bankx"))
    expect_error("UNAUTHENTICATED", "permission denied", lambda: mgr.delete_user(admin_id))
    mgr.delete_user("bankx-1")
    # Unknown ids look exactly like foreign ones (Q27: no user enumeration).
    expect_error("UNAUTHENTICATED", "permission denied", lambda: mgr.delete_user("bankx-1"))
    expect_error("UNAUTHENTICATED", "permission denied", lambda: mgr.reset_user_password("zzz"))


def test_admin_lists_every_user_sorted(server: Server) -> None:
    ids = server.admin().list_users("anything")
    assert "admin" in ids and ids == sorted(ids, key=str.encode)
    expect_error("UNAUTHENTICATED", "invalid user id", lambda: server.admin().list_users(""))


def test_password_change_revokes_old_sessions(server: Server) -> None:
    uid, c = server.new_user("DataOwner", "a")
    old = server.client(uid, "pw-" + uid)
    c.change_password("new-password")
    expect_error("UNAUTHENTICATED", "incorrent credential", lambda: old.list_functions())
    expect_error("UNAUTHENTICATED", AUTH_FAILED, lambda: c.change_password("x"))
    server.client(uid, "new-password").list_functions()
    fresh = server.client(uid, "new-password")
    expect_error("UNAUTHENTICATED", AUTH_FAILED, lambda: fresh.change_password(""))


def test_update_changes_role_and_authorization_uses_the_stored_role(server: Server) -> None:
    uid, c = server.new_user("DataOwner", "a")
    server.admin().update_user(uid, "pw2", "FunctionOwner")
    # Q15 fix: the stored role applies; old tokens are revoked by the update.
    with pytest.raises(ClientError):
        c.list_functions()
    fo = server.client(uid, "pw2")
    fo.register_function("f", executor_type="builtin")


def test_deleted_user_token_stops_working(server: Server) -> None:
    uid, c = server.new_user("DataOwner", "a")
    server.admin().delete_user(uid)
    expect_error("UNAUTHENTICATED", "incorrent credential", lambda: c.list_functions())
    expect_error("UNAUTHENTICATED", "invalid user id",
                 lambda: server.admin().update_user(uid, "p", "DataOwner", "a"))
