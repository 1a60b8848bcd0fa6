"""Password guessing against UserLogin is throttled per user id and per address,
audited, and costs the same for unknown and known users (issue 10, item 3)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from confide.config import Limits
from confide.errors import Code, ServiceError
from confide.services.authentication._throttle import (
    LoginThrottle,
    Scope,
    Throttled,
    address_key,
)
from confide.services.frontend import peer_ip

from ._auth_support import IP_A, IP_B, Auth, Clock, make_auth

FAILED = "authentication failed"


@pytest.fixture
def auth(tmp_path: Path) -> Auth:
    a = make_auth(f"sqlite:///{tmp_path / 'auth.db'}")
    a.register("alice", "alice-pw")
    a.register("bob", "bob-pw")
    return a


def _login(auth: Auth, user: str, password: str, ip: bytes = IP_A) -> str:
    """The error message of a failed login ('' on success)."""
    try:
        auth.service.login(user, password, ip=ip)
    except ServiceError as e:
        assert e.code is Code.UNAUTHENTICATED  # Teaclave: every login error is 16
        return e.message
    return ""


def test_thirty_wrong_passwords_from_one_address_are_refused_and_audited(auth: Auth) -> None:
    verified_before = len(auth.hasher.verified)
    answers = [_login(auth, "alice", f"guess-{i}") for i in range(30)]
    assert answers[:5] == [FAILED] * 5
    assert answers[5:] == [f"{FAILED}: too many failed logins for this user id, "
                           "retry after 1 s"] * 25
    # Only the five free guesses were checked at all.
    assert len(auth.hasher.verified) - verified_before == 5
    failures = auth.entries("authentication failed for 'alice'")
    throttles = auth.entries("throttled for 'alice'")
    assert (len(failures), len(throttles)) == (5, 25)
    assert all(e.ip == IP_A and not e.result and e.user == "" for e in failures + throttles)
    assert "retry after 1 s" in throttles[0].message
    # Even the right password waits for the lock to end.
    assert _login(auth, "alice", "alice-pw").endswith("retry after 1 s")


def test_right_password_of_another_user_from_another_address_is_not_affected(
        auth: Auth) -> None:
    for i in range(30):
        _login(auth, "alice", f"guess-{i}", IP_A)
    assert _login(auth, "bob", "bob-pw", IP_B) == ""
    assert _login(auth, "bob", "bob-pw", IP_A) == ""  # 5 failures < the address's 20
    success = auth.entries("user_login")[-1]
    assert (success.message, success.result, success.user) == (
        "user_login", True, "{ user: bob, role: PlatformAdmin }")


def test_right_password_works_after_the_window(auth: Auth) -> None:
    for i in range(5):
        _login(auth, "alice", f"guess-{i}")
    assert "retry after 1 s" in _login(auth, "alice", "alice-pw")
    auth.clock.advance(1.0)
    assert _login(auth, "alice", "alice-pw") == ""
    # The success cleared alice's failures: the next mistake is a plain failure.
    assert _login(auth, "alice", "typo") == FAILED
    assert _login(auth, "alice", "alice-pw") == ""


def test_lockout_doubles_with_each_failure_up_to_the_cap(tmp_path: Path) -> None:
    auth = make_auth(f"sqlite:///{tmp_path / 'a.db'}",
                     limits=Limits(login_max_lockout_s=20.0, login_forget_after_s=60.0))
    auth.register("alice", "alice-pw")
    for i in range(5):
        _login(auth, "alice", f"guess-{i}")
    waits = []
    for i in range(6):
        message = _login(auth, "alice", "x")
        waits.append(int(message.rsplit("after ", 1)[1].split()[0]))
        auth.clock.advance(waits[-1])
        assert _login(auth, "alice", f"more-{i}") == FAILED  # checked once the lock ends
    assert waits == [1, 2, 4, 8, 16, 20]


def test_failures_are_forgotten_after_the_forget_window(auth: Auth) -> None:
    for i in range(4):
        _login(auth, "alice", f"guess-{i}")
    auth.clock.advance(auth.limits.login_forget_after_s)
    for i in range(4):  # four more are free again: the old ones expired
        assert _login(auth, "alice", f"again-{i}") == FAILED
    assert _login(auth, "alice", "alice-pw") == ""


def test_password_spraying_from_one_address_throttles_the_address(auth: Auth) -> None:
    """One guess each at 30 accounts: no user reaches 5, the address reaches 20."""
    answers = [_login(auth, f"victim-{i}", "Summer2026!") for i in range(30)]
    assert answers[:20] == [FAILED] * 20
    assert all(a.endswith("for this address, retry after 1 s") for a in answers[20:])
    assert _login(auth, "bob", "bob-pw", IP_A).endswith("for this address, retry after 1 s")
    assert _login(auth, "bob", "bob-pw", IP_B) == ""  # other addresses are not affected
    # An attacker's own good login does not reset its address's count.
    auth.clock.advance(1.0)
    assert _login(auth, "bob", "bob-pw", IP_A) == ""
    assert _login(auth, "victim-x", "guess", IP_A) == FAILED
    assert _login(auth, "victim-y", "guess", IP_A).endswith("retry after 2 s")


def test_unknown_user_is_throttled_exactly_like_a_known_one(auth: Auth) -> None:
    known = [_login(auth, "alice", f"g{i}") for i in range(8)]
    unknown = [_login(auth, "nobody", f"g{i}", IP_B) for i in range(8)]
    assert known == unknown
    assert len(auth.entries("authentication failed for an unknown user id")) == 5
    # The unknown id itself is never written to the audit log (it may be a
    # password typed into the wrong field).
    assert not auth.entries("nobody")


def test_unknown_user_login_runs_argon2_verify_against_a_dummy_hash(auth: Auth) -> None:
    before = len(auth.hasher.verified)
    assert _login(auth, "nobody", "some password") == FAILED
    assert _login(auth, "alice", "wrong password", IP_B) == FAILED
    dummy, real = auth.hasher.verified[before:]
    assert dummy.startswith("$argon2id$") and real.startswith("$argon2id$")
    assert dummy.split("$")[3] == real.split("$")[3]  # same cost parameters: same work


def test_parallel_guesses_get_no_more_tries_than_sequential_ones(auth: Auth) -> None:
    gate = threading.Event()
    auth.hasher.gate = gate
    before = len(auth.hasher.verified)
    answers: list[str] = []

    def guess(i: int) -> None:
        answers.append(_login(auth, "alice", f"parallel-{i}"))

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for _ in range(5):  # five attempts reach argon2 ...
        assert auth.hasher.inside.acquire(timeout=10)
    while len(answers) < 7:  # ... the seven others are refused without it
        threading.Event().wait(0.01)
    gate.set()
    for t in threads:
        t.join(10)
    assert len(auth.hasher.verified) - before == 5
    assert answers.count(FAILED) == 5
    assert sum("too many failed logins" in a for a in answers) == 7


def test_empty_or_oversized_credentials_are_audited_but_not_counted(auth: Auth) -> None:
    for _ in range(10):
        assert _login(auth, "alice", "") == FAILED
        assert _login(auth, "alice", "x" * (auth.limits.max_password_chars + 1)) == FAILED
    assert len(auth.entries("empty or oversized")) == 20
    assert _login(auth, "alice", "alice-pw") == ""


def test_throttle_table_is_bounded_and_evicts_the_least_recent_key() -> None:
    clock = Clock()
    limits = Limits(login_throttle_max_entries=3, login_user_free_failures=1)
    throttle = LoginThrottle(limits, clock)
    for i in range(4):  # cap + 1 users, one failure each, from four addresses
        throttle.admit(f"u{i}".encode(), bytes([i]) * 16).failed()
    assert throttle.sizes() == (3, 3)
    with pytest.raises(Throttled):  # the three newest are still locked ...
        throttle.admit(b"u3", b"\x09" * 16)
    throttle.admit(b"u0", b"\x09" * 16).succeeded()  # ... the oldest was evicted


def test_abandoned_attempt_counts_as_no_failure() -> None:
    throttle = LoginThrottle(Limits(login_user_free_failures=1), Clock())
    for _ in range(3):
        with throttle.admit(b"alice", bytes(16)):
            pass  # e.g. the database failed before the password was judged
    assert throttle.sizes() == (0, 0)
    throttle.admit(b"alice", bytes(16)).failed()
    with pytest.raises(Throttled) as e:
        throttle.admit(b"alice", bytes(16))
    assert (e.value.scope, e.value.retry_after_s, e.value.failures) == (Scope.USER, 1, 1)


def test_ipv6_addresses_count_per_slash_64() -> None:
    a = bytes.fromhex("20010db8000000010000000000000001")
    b = bytes.fromhex("20010db80000000100000000deadbeef")
    c = bytes.fromhex("20010db8000000020000000000000001")
    v4 = bytes(12) + bytes([192, 0, 2, 7])
    assert address_key(a) == address_key(b) != address_key(c)
    assert address_key(v4) == v4


@pytest.mark.parametrize("bad", [
    Limits(login_user_free_failures=0), Limits(login_address_free_failures=0),
    Limits(login_throttle_max_entries=0), Limits(login_backoff_base_s=0),
    Limits(login_max_lockout_s=100.0, login_forget_after_s=99.0),
])
def test_inconsistent_throttle_limits_are_refused(bad: Limits) -> None:
    with pytest.raises(ValueError, match="login throttle"):
        LoginThrottle(bad, Clock())


@pytest.mark.parametrize(("peer", "ip"), [
    ("ipv4:127.0.0.1:38546", bytes(12) + bytes([127, 0, 0, 1])),
    ("ipv6:%5B::1%5D:52920", bytes(15) + b"\x01"),  # what grpc writes for IPv6
    ("ipv6:[2001:db8::7]:443", bytes.fromhex("20010db8000000000000000000000007")),
    ("ipv6:%5B::ffff:10.0.0.1%5D:1", bytes(12) + bytes([10, 0, 0, 1])),
    ("unix:/tmp/sock", bytes(16)),
])
def test_peer_address_is_read_from_every_grpc_peer_form(peer: str, ip: bytes) -> None:
    """Each IPv6 client must count as itself, not as the unknown address ``::``."""
    assert peer_ip(peer) == ip
