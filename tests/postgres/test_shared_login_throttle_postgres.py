"""Failed logins shared by authentication replicas, on PostgreSQL (issue 12)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import create_engine, text

from confide.crypto.records import RecordSealer
from confide.errors import Code, ServiceError
from confide.storage import Database, Get

from ..unit._auth_support import IP_A
from ..unit.test_shared_login_throttle import (
    _replicas,
    check_a_changed_row_fails_closed,
    check_address_lock_is_shared_and_not_cleared_by_success,
    check_concurrent_failures_on_two_replicas_are_all_counted,
    check_failures_on_one_replica_lock_the_user_on_the_other,
    check_migration_0005,
    check_parallel_attempts_over_replicas_get_no_more_tries_than_sequential_ones,
    check_rows_are_keyed_hashes_forgotten_and_purged,
    check_table_is_bounded_per_scope,
)
from .conftest import ADMIN_URL


@pytest.mark.parametrize("check", [
    check_failures_on_one_replica_lock_the_user_on_the_other,
    check_address_lock_is_shared_and_not_cleared_by_success,
    check_rows_are_keyed_hashes_forgotten_and_purged,
    check_table_is_bounded_per_scope,
    check_a_changed_row_fails_closed,
    check_concurrent_failures_on_two_replicas_are_all_counted,
    check_parallel_attempts_over_replicas_get_no_more_tries_than_sequential_ones,
], ids=lambda check: check.__name__.removeprefix("check_"))
def test_the_shared_throttle_on_postgresql(pg_url: str, check: Callable[[str], None]) -> None:
    """The SQLite tests' checks (tests/unit/test_shared_login_throttle.py), on PostgreSQL."""
    check(pg_url)


def test_a_database_outage_refuses_logins_unchecked(pg_url: str) -> None:
    one, _ = _replicas(pg_url)
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:  # the database goes away under the server
        c.execute(text(f'DROP DATABASE "{pg_url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()
    before = len(one.hasher.verified)
    with pytest.raises(ServiceError) as e:
        one.service.login("alice", "alice-pw", ip=IP_A)
    assert e.value.code is Code.UNAVAILABLE
    assert e.value.message.startswith("login throttle unavailable")
    assert len(one.hasher.verified) == before


def test_get_many_in_a_read_returns_the_rows_in_the_order_asked(pg_url: str) -> None:
    db = Database(pg_url, RecordSealer(b"s" * 32))
    try:
        with db.write() as txn:
            for name in ("a", "b", "c"):
                txn.insert("files", name, {"n": name})
        with db.read() as txn:
            rows = txn.get_many(Get("files", "c"), Get("files", "x"), Get("files", "a"),
                                Get("files", "c"))
        assert [None if r is None else r.body["n"] for r in rows] == ["c", None, "a", "c"]
    finally:
        db.close()


def test_migration_0005_adds_and_drops_the_failure_table(pg_url: str) -> None:
    check_migration_0005(pg_url)
