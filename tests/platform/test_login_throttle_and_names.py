"""Issue 10, items 3 and 4, through the real gRPC API of `confide serve`:
password guessing is throttled and audited; names that impersonate others
(case variants, bidi or control characters, outer spaces, non-NFC) are refused.

The throttle tests run on servers of their own, listening on `localhost`
(127.0.0.1 and ::1: two source addresses), so locking an address does not
disturb the shared server's other tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from confide.client import Client, ClientError

from ._helpers import expect_error
from ._server import ADMIN_PASSWORD, Server

FAILED = "authentication failed"
V4_LOOPBACK = bytes(12) + bytes([127, 0, 0, 1])  # audit form ::127.0.0.1


def _dual_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("throttle") / "data", workers=1,
               extra_args=["--host", "localhost"]).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def dual_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _dual_stack(tmp_path_factory)


@pytest.fixture
def sprayed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own: spraying leaves its 127.0.0.1 locked."""
    yield from _dual_stack(tmp_path_factory)


def _client(server: Server, host: str = "127.0.0.1") -> Client:
    return Client.connect(host, server_cert=server.data_dir / "api-cert.pem",
                          authentication_port=server.ports["authentication"],
                          frontend_port=server.ports["frontend"])


def _register(server: Server, role: str = "DataOwner", attribute: str = "org") -> str:
    user_id = f"t-{uuid.uuid4().hex[:8]}"
    with server.admin() as admin:
        admin.register_user(user_id, "pw-" + user_id, role, attribute)
    return user_id


def _message(fn: object) -> str:
    try:
        fn()  # type: ignore[operator]
    except ClientError as e:
        assert e.code == "UNAUTHENTICATED", e
        return e.message
    return ""


def test_thirty_wrong_passwords_are_refused_and_audited(dual_stack: Server) -> None:
    victim = _register(dual_stack)
    c = _client(dual_stack)
    answers = [_message(lambda i=i: c.login(victim, f"guess-{i}")) for i in range(30)]
    assert answers[:5] == [FAILED] * 5
    assert all(a.startswith(f"{FAILED}: too many failed logins for this user id, retry after ")
               for a in answers[5:]), answers[5:]
    with dual_stack.admin() as admin:
        throttled = admin.query_audit_logs(f'"throttled for {victim}"', 100)
        failed = admin.query_audit_logs(f'"authentication failed for {victim}"', 100)
    assert (len(throttled), len(failed)) == (25, 5)
    assert all(e.ip == V4_LOOPBACK and not e.result and e.user == "" for e in throttled + failed)


def test_another_user_from_another_address_is_not_affected(dual_stack: Server) -> None:
    victim, other = _register(dual_stack), _register(dual_stack)
    c = _client(dual_stack)
    for i in range(30):
        _message(lambda i=i: c.login(victim, f"guess-{i}"))
    # From ::1, the other user logs in at once; so does the admin from 127.0.0.1.
    assert _client(dual_stack, "[::1]").login(other, "pw-" + other)
    assert _client(dual_stack).login("admin", ADMIN_PASSWORD)
    with dual_stack.admin() as admin:
        ok = admin.query_audit_logs(f'user:"{other}"', 10)
    assert [e.ip for e in ok if e.message == "user_login"] == [bytes(15) + b"\x01"]  # ::1


def test_spraying_one_password_over_many_accounts_locks_the_address(
        sprayed_server: Server) -> None:
    """(That the lock covers every user id from the address is unit-tested with
    an injected clock: tests/unit/test_login_throttle.py.)"""
    c = _client(sprayed_server)
    answers = [_message(lambda i=i: c.login(f"sprayed-{i}", "Summer2026!")) for i in range(40)]
    assert answers[0] == FAILED
    assert any(a.startswith(f"{FAILED}: too many failed logins for this address, retry after ")
               for a in answers), answers
    with _client(sprayed_server, "[::1]") as admin:  # ::1 is not affected
        admin.login("admin", ADMIN_PASSWORD)
        assert admin.query_audit_logs('"throttled for an unknown user id"', 100)


# -- names (the shared server: nothing here locks anything) ------------------
@pytest.mark.parametrize(("user_id", "rule"), [
    ("ADMIN", "unique ignoring case"),
    ("admin ", "leading or trailing whitespace"),
    (" admin", "leading or trailing whitespace"),
    ("a\x00b", "U+0000 (a control character)"),
    ("\u202eevil", "U+202E (a format character: bidi control"),
    ("ad\u200bmin", "U+200B"),
    ("ev\u2067il", "U+2067"),
    ("jose\u0301", "not in Unicode normalisation form NFC"),
    ("x" * 257, "longer than 256 characters"),
])
def test_rejects_registering_an_impersonating_user_id(server: Server, user_id: str,
                                                      rule: str) -> None:
    with server.admin() as admin:
        e = expect_error("INVALID_ARGUMENT", None,
                         lambda: admin.register_user(user_id, "pw", "PlatformAdmin"))
    assert e.message.startswith("invalid user id: ") and rule in e.message, e.message
    expect_error("UNAUTHENTICATED", FAILED, lambda: server.client(user_id, "pw"))


def test_case_variant_registered_second_is_refused(server: Server) -> None:
    name = f"Mixed-{uuid.uuid4().hex[:6]}"
    with server.admin() as admin:
        admin.register_user(name, "pw", "DataOwner", "org")
        for variant in (name.lower(), name.upper(), name.swapcase()):
            e = expect_error("INVALID_ARGUMENT", None,
                             lambda v=variant: admin.register_user(v, "pw", "DataOwner", "org"))
            assert "unique ignoring case" in e.message
        expect_error("UNAUTHENTICATED", "user id exist",
                     lambda: admin.register_user(name, "pw", "DataOwner", "org"))


def test_rejects_a_data_owner_attribute_with_a_bidi_override(server: Server) -> None:
    with server.admin() as admin:
        e = expect_error("INVALID_ARGUMENT", None, lambda: admin.register_user(
            f"u-{uuid.uuid4().hex[:6]}", "pw", "DataOwner", "org\u202e1"))
    assert e.message.startswith("invalid attribute: contains U+202E")


def test_teaclave_style_registration_of_ordinary_ids_still_works(server: Server) -> None:
    suffix = uuid.uuid4().hex[:6]
    ids = [f"user0{suffix}", f"frontend_user_{suffix}", f"rsa_sign_user1.{suffix}",
           f"alice-{suffix}@example.com", f"John Smith {suffix}"]
    with server.admin() as admin:
        for uid in ids:
            admin.register_user(uid, "password", "PlatformAdmin")
    for uid in ids:
        assert server.client(uid, "password").list_users("x")


def test_rejects_a_function_name_with_a_bidi_override(server: Server) -> None:
    with server.admin() as admin:
        e = expect_error("INVALID_ARGUMENT", None, lambda: admin.register_function(
            "builtin-echo\u202e", executor_type="builtin"))
        assert e.message.startswith("invalid function name: contains U+202E")
        expect_error("INVALID_ARGUMENT", None, lambda: admin.register_function(
            " builtin-echo", executor_type="builtin"))
        assert admin.register_function("builtin-echo", executor_type="builtin")
