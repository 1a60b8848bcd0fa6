"""Failed logins counted in the database, so every authentication replica sees them
(issue 12): two services on one database stand for two replicas. The ``check_*``
functions run here on SQLite and in tests/postgres on PostgreSQL."""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from confide.config import Limits
from confide.errors import Code, ServiceError
from confide.services._names import name_key
from confide.services.authentication import LoginThrottle, SharedFailures
from confide.services.authentication._shared_failures import PENDING_S, ThrottleUnavailable
from confide.services.authentication._throttle import Throttled
from confide.storage import Schema, StorageError

from ._auth_support import IP_A, IP_B, Auth, Clock, make_auth
from ._migration_support import HEAD, open_db

FAILED = "authentication failed"
LOCKED_USER = f"{FAILED}: too many failed logins for this user id, retry after"
KEY = b"k" * 32


def _login(auth: Auth, user: str, password: str, ip: bytes = IP_A) -> str:
    """The error message of a failed login ('' on success)."""
    try:
        auth.service.login(user, password, ip=ip)
    except ServiceError as e:
        assert e.code is Code.UNAUTHENTICATED
        return e.message
    return ""


def _replicas(url: str, limits: Limits | None = None) -> tuple[Auth, Auth]:
    """Two authentication services, each with its own connections, on one
    database and one clock; alice and bob registered."""
    clock = Clock()
    one = make_auth(url, limits=limits, clock=clock, shared_key=KEY)
    two = make_auth(url, limits=limits, clock=clock, shared_key=KEY)
    one.register("alice", "alice-pw")
    one.register("bob", "bob-pw")
    return one, two


def _rows(url: str) -> list[tuple[str, int, int]]:
    """(id, scope, expires_at) of every login_failures row, read around confide."""
    engine = create_engine(url.replace("+psycopg", "+psycopg"))
    try:
        with engine.connect() as c:
            return [(str(r[0]), int(r[1]), int(r[2])) for r in c.execute(
                text("SELECT id, scope, expires_at FROM login_failures ORDER BY id"))]
    finally:
        engine.dispose()


def check_failures_on_one_replica_lock_the_user_on_the_other(url: str) -> None:
    one, two = _replicas(url)
    assert [_login(one, "alice", f"guess-{i}") for i in range(3)] == [FAILED] * 3
    assert [_login(two, "alice", f"guess-{i}") for i in range(2)] == [FAILED] * 2
    verified = len(one.hasher.verified), len(two.hasher.verified)
    # The fifth failure (on two) locks alice on one as well, right password or not.
    assert _login(one, "alice", "alice-pw") == f"{LOCKED_USER} 1 s"
    assert _login(two, "alice", "guess-x") == f"{LOCKED_USER} 1 s"
    assert (len(one.hasher.verified), len(two.hasher.verified)) == verified  # not checked
    assert _login(one, "bob", "bob-pw") == ""  # another user id is not affected
    # The lock doubles with each further failure, whichever replica sees it.
    one.clock.advance(1.0)
    assert _login(one, "alice", "guess-6") == FAILED
    assert _login(two, "alice", "alice-pw") == f"{LOCKED_USER} 2 s"
    one.clock.advance(2.0)
    assert _login(two, "alice", "guess-7") == FAILED
    assert _login(one, "alice", "alice-pw") == f"{LOCKED_USER} 4 s"
    one.clock.advance(4.0)
    # A success on one clears alice's count on both: the next failure is a free one.
    assert _login(one, "alice", "alice-pw") == ""
    assert _login(two, "alice", "guess-8") == FAILED
    assert _login(one, "alice", "alice-pw") == ""


def test_failures_on_one_replica_lock_the_user_on_the_other(tmp_path: Path) -> None:
    check_failures_on_one_replica_lock_the_user_on_the_other(f"sqlite:///{tmp_path / 'a.db'}")


def test_without_the_shared_store_each_replica_counts_alone(tmp_path: Path) -> None:
    """What the shared store changes (the negative of the test above)."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    one, two = make_auth(url), make_auth(url)
    one.register("alice", "alice-pw")
    assert [_login(one, "alice", f"g{i}") for i in range(5)] == [FAILED] * 5
    assert _login(one, "alice", "alice-pw").startswith(LOCKED_USER)
    assert _login(two, "alice", "alice-pw") == ""
    assert _rows(url) == []


def check_address_lock_is_shared_and_not_cleared_by_success(url: str) -> None:
    one, two = _replicas(url, Limits(login_address_free_failures=3))
    for i in range(3):  # spraying three user ids from one address, over both replicas
        assert _login((one, two)[i % 2], f"user-{i}", "guess") == FAILED
    locked = f"{FAILED}: too many failed logins for this address, retry after 1 s"
    assert _login(one, "bob", "bob-pw") == locked
    assert _login(two, "bob", "bob-pw") == locked
    assert _login(two, "bob", "bob-pw", ip=IP_B) == ""  # another address is not locked
    one.clock.advance(1.0)
    assert _login(two, "alice", "alice-pw") == ""  # a success clears no address count ...
    assert _login(one, "user-9", "guess") == FAILED
    assert _login(two, "alice", "alice-pw") == locked.replace("1 s", "2 s")  # ... doubled


def test_address_lock_is_shared_and_not_cleared_by_success(tmp_path: Path) -> None:
    check_address_lock_is_shared_and_not_cleared_by_success(f"sqlite:///{tmp_path / 'a.db'}")


def check_rows_are_keyed_hashes_forgotten_and_purged(url: str) -> None:
    one, two = _replicas(url)
    _login(one, "alice", "guess")
    rows = _rows(url)
    assert sorted(scope for _, scope, _ in rows) == [0, 1]
    ids = " ".join(row_id for row_id, _, _ in rows)
    assert all(re.fullmatch(r"[0-9a-f]{64}", row_id) for row_id, _, _ in rows)
    for secret in ("alice", name_key("alice"), IP_A.hex(), "10.0.0.1"):
        assert secret not in ids
    # Another platform key gives other ids: a table cannot be matched across platforms.
    other = SharedFailures(one.db, b"o" * 32, one.limits, one.clock)
    other.end(name_key("alice").encode(), IP_A, None, failed=True, clear_user=False)
    assert len(_rows(url)) == 4
    # Forgotten login_forget_after_s after the last failure, then purged by the next one.
    one.clock.advance(one.limits.login_forget_after_s)
    assert [_login(two, "alice", f"g{i}") for i in range(5)] == [FAILED] * 5  # five free again
    assert _login(one, "bob", "guess", ip=IP_B) == FAILED
    assert sorted(scope for _, scope, _ in _rows(url)) == [0, 0, 1, 1]  # alice, bob; A, B


def test_rows_are_keyed_hashes_forgotten_and_purged(tmp_path: Path) -> None:
    check_rows_are_keyed_hashes_forgotten_and_purged(f"sqlite:///{tmp_path / 'a.db'}")


def check_table_is_bounded_per_scope(url: str) -> None:
    one, _ = _replicas(url, Limits(login_throttle_max_entries=3, login_user_free_failures=1))
    for i in range(6):  # six user ids from six addresses, a second apart
        one.clock.advance(1.0)
        assert _login(one, f"user-{i}", "guess", ip=bytes(12) + bytes([10, 9, 9, i])) == FAILED
    by_scope = [scope for _, scope, _ in _rows(url)]
    assert (by_scope.count(0), by_scope.count(1)) == (3, 3)
    # The least recently failed were dropped: user-0 is unknown to the store now ...
    assert SharedFailures(one.db, KEY, one.limits, one.clock).read(
        name_key("user-0").encode(), IP_B) == (None, None)
    # ... while user-5 is still locked, on a replica that never saw it fail.
    fresh = make_auth(url, limits=one.limits, clock=one.clock, shared_key=KEY)
    assert _login(fresh, "user-5", "guess", ip=IP_B).startswith(LOCKED_USER)


def test_table_is_bounded_per_scope(tmp_path: Path) -> None:
    check_table_is_bounded_per_scope(f"sqlite:///{tmp_path / 'a.db'}")


def check_a_changed_row_fails_closed(url: str) -> None:
    one, two = _replicas(url)
    for i in range(5):
        _login(one, "alice", f"g{i}")
    engine = create_engine(url)
    with engine.begin() as c:  # the database's owner forgets the lock early
        c.execute(text("UPDATE login_failures SET expires_at = 1"))
    engine.dispose()
    before = len(two.hasher.verified)
    with pytest.raises(ServiceError) as e:
        two.service.login("alice", "alice-pw", ip=IP_A)
    assert e.value.code is Code.UNAVAILABLE
    assert e.value.message.startswith("login throttle unavailable")
    assert len(two.hasher.verified) == before  # no password was checked


def test_a_changed_row_fails_closed(tmp_path: Path) -> None:
    check_a_changed_row_fails_closed(f"sqlite:///{tmp_path / 'a.db'}")


def test_a_database_outage_refuses_logins_unchecked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    one, _ = _replicas(url)
    with sqlite3.connect(tmp_path / "a.db") as c:  # the table is gone: every read fails
        c.execute("DROP TABLE login_failures")
    before = len(one.hasher.verified)
    with pytest.raises(ServiceError) as e:
        one.service.login("alice", "alice-pw", ip=IP_A)
    assert (e.value.code, e.value.message) == (
        Code.UNAVAILABLE, "login throttle unavailable: the failed-login counts cannot be read "
        "from the database; retry later")
    assert len(one.hasher.verified) == before


def test_a_failure_the_database_cannot_record_still_counts_in_the_process(
        tmp_path: Path) -> None:
    """Reads work, writes fail (say the disk is full): logins go on, with the
    pending rule and the failures of this process alone."""

    class ReadOnly(SharedFailures):
        def _write(self, *_args: object) -> None:
            raise StorageError("database or disk is full")

    url = f"sqlite:///{tmp_path / 'a.db'}"
    one = make_auth(url)
    clock = Clock()
    store = ReadOnly(one.db, KEY, Limits(), clock)
    throttle = LoginThrottle(Limits(), clock, shared=store)
    held = [throttle.admit(b"alice", IP_A) for _ in range(5)]  # 5 free failures
    with pytest.raises(Throttled):  # a sixth parallel attempt waits for their outcome
        throttle.admit(b"alice", IP_A)
    for attempt in held:
        attempt.failed()
    with pytest.raises(Throttled):  # locked by the failures this process counted
        throttle.admit(b"alice", IP_A)
    assert store.read(b"alice", IP_A) == (None, None)  # nothing reached the database


def check_parallel_attempts_over_replicas_get_no_more_tries_than_sequential_ones(
        url: str) -> None:
    """The pending rule across replicas: attempts being checked on any replica
    hold places in the rows, so two replicas together admit no more parallel
    attempts for a key than its free failures left (one replica alone did)."""
    one, two = _replicas(url)
    throttles = [LoginThrottle(a.limits, a.clock, shared=SharedFailures(
        a.db, KEY, a.limits, a.clock)) for a in (one, two)]
    user = name_key("alice").encode()
    held = [throttles[i % 2].admit(user, IP_A) for i in range(5)]  # 5 free failures
    for throttle in throttles:  # 3 + 2 in flight: a sixth waits on either replica
        with pytest.raises(Throttled, match="for this user id, retry after 1 s"):
            throttle.admit(user, IP_B)
    held[0].failed()  # 1 failure, 4 still in flight: 4 free failures left, all taken
    with pytest.raises(Throttled):
        throttles[1].admit(user, IP_B)
    held[1].succeeded()  # clears the user id's failures: 3 in flight of 5
    held.append(throttles[1].admit(user, IP_B))
    for attempt in held[2:]:
        attempt.failed()
    # Places are given back: 4 failures, none pending, one free failure left.
    held = [throttles[0].admit(user, IP_A)]
    with pytest.raises(Throttled):
        throttles[1].admit(user, IP_A)
    # A replica that dies mid-check: its place lapses after PENDING_S.
    one.clock.advance(PENDING_S - 1)
    with pytest.raises(Throttled):
        throttles[1].admit(user, IP_A)
    one.clock.advance(1.0)
    throttles[1].admit(user, IP_A).succeeded()
    assert SharedFailures(one.db, KEY, one.limits, one.clock).read(user, IP_A)[0] is None


def test_parallel_attempts_over_replicas_get_no_more_tries_than_sequential_ones(
        tmp_path: Path) -> None:
    check_parallel_attempts_over_replicas_get_no_more_tries_than_sequential_ones(
        f"sqlite:///{tmp_path / 'a.db'}")


def check_concurrent_failures_on_two_replicas_are_all_counted(url: str) -> None:
    limits = Limits(login_user_free_failures=1000, login_address_free_failures=1000)
    one, two = _replicas(url, limits)
    stores = [SharedFailures(a.db, KEY, limits, a.clock) for a in (one, two)]
    user = name_key("alice").encode()

    def fail(store: SharedFailures) -> None:
        for _ in range(10):
            store.end(user, IP_A, None, failed=True, clear_user=False)

    threads = [threading.Thread(target=fail, args=(stores[i % 2],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    remote_user, remote_address = stores[0].read(user, IP_A)
    assert remote_user is not None and remote_address is not None
    assert (remote_user.failures, remote_address.failures) == (40, 40)


def test_concurrent_failures_on_two_replicas_are_all_counted(tmp_path: Path) -> None:
    check_concurrent_failures_on_two_replicas_are_all_counted(f"sqlite:///{tmp_path / 'a.db'}")


def test_a_short_row_key_is_refused(tmp_path: Path) -> None:
    one = make_auth(f"sqlite:///{tmp_path / 'a.db'}")
    with pytest.raises(ValueError, match="row key"):
        SharedFailures(one.db, b"k" * 31, Limits(), Clock())


def test_read_failure_is_raised_as_throttle_unavailable(tmp_path: Path) -> None:
    one = make_auth(f"sqlite:///{tmp_path / 'a.db'}")
    store = SharedFailures(one.db, KEY, Limits(), Clock())
    one.db.close()
    (tmp_path / "a.db").unlink()
    (tmp_path / "a.db").mkdir()  # not a database any more
    with pytest.raises(ThrottleUnavailable, match="cannot read the failed-login counts"):
        store.read(b"alice", IP_A)


def check_migration_0005(url: str) -> None:
    """0004 -> head adds ``login_failures`` (usable); head -> 0004 drops it (the counts
    are forgotten) and the next upgrade starts it empty."""
    open_db(url, "0004").close()
    engine = create_engine(url)
    assert not inspect(engine).has_table("login_failures")
    engine.dispose()
    schema = Schema(url)
    assert schema.upgrade() == "0004" and schema.current() == HEAD
    store = SharedFailures(db := open_db(url), KEY, Limits(), Clock())
    store.end(b"alice", IP_A, None, failed=True, clear_user=False)
    assert store.read(b"alice", IP_A)[0] is not None
    db.close()
    assert schema.downgrade("0004") == HEAD
    engine = create_engine(url)
    assert not inspect(engine).has_table("login_failures")
    engine.dispose()
    assert schema.upgrade() == "0004"
    schema.close()
    store = SharedFailures(db := open_db(url), KEY, Limits(), Clock())
    assert store.read(b"alice", IP_A) == (None, None)
    db.close()


def test_migration_0005_adds_and_drops_the_failure_table(tmp_path: Path) -> None:
    check_migration_0005(f"sqlite:///{tmp_path / 'm.db'}")
