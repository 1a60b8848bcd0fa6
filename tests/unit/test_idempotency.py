"""Idempotency keys for creates (services/_idempotency.py; issue 12 item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from confide.config import Limits
from confide.errors import ServiceError
from confide.services._idempotency import (
    IdempotencyKey,
    parse_idempotency_key,
    run_idempotent,
)
from confide.storage import Database, Txn

from ._services import sqlite_database


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return sqlite_database(tmp_path)


def _maker(made: list[str]):  # type: ignore[no-untyped-def]
    def make(txn: Txn) -> str:
        new = f"obj-{len(made)}"
        made.append(new)
        return new
    return make


def _key(user: str, key: str, request: bytes, clock: Clock, limits: Limits | None = None
         ) -> IdempotencyKey:
    return IdempotencyKey.of(user, key, "create_task", request, limits or Limits(), clock)


def test_a_retry_with_the_same_key_returns_the_first_result(db: Database) -> None:
    clock, made = Clock(), []
    first = run_idempotent(db, _key("alice", "k-12345678", b"req", clock), _maker(made))
    again = run_idempotent(db, _key("alice", "k-12345678", b"req", clock), _maker(made))
    assert first == again == "obj-0" and made == ["obj-0"]
    assert _key("alice", "k-12345678", b"req", clock).lookup(db) == "obj-0"


def test_without_a_key_every_call_creates(db: Database) -> None:
    made: list[str] = []
    assert run_idempotent(db, None, _maker(made)) != run_idempotent(db, None, _maker(made))


def test_the_same_key_for_another_request_is_refused(db: Database) -> None:
    clock, made = Clock(), []
    run_idempotent(db, _key("alice", "k-12345678", b"req", clock), _maker(made))
    with pytest.raises(ServiceError) as e:
        run_idempotent(db, _key("alice", "k-12345678", b"other", clock), _maker(made))
    assert e.value.code.name == "INVALID_ARGUMENT" and "different request" in e.value.message
    assert e.value.detail is not None and e.value.detail.reason == "IDEMPOTENCY_KEY_REUSED"
    assert made == ["obj-0"]


def test_keys_are_per_user(db: Database) -> None:
    clock, made = Clock(), []
    a = run_idempotent(db, _key("alice", "k-12345678", b"req", clock), _maker(made))
    b = run_idempotent(db, _key("bob", "k-12345678", b"req", clock), _maker(made))
    assert a != b


def test_an_expired_key_creates_again_and_old_keys_are_purged(db: Database) -> None:
    clock, made = Clock(), []
    limits = Limits(idempotency_ttl_s=60.0)
    for i in range(3):
        run_idempotent(db, _key("alice", f"old-key-{i}", b"r", clock, limits), _maker(made))
    clock.now += 61
    again = run_idempotent(db, _key("alice", "old-key-0", b"r", clock, limits), _maker(made))
    assert again == "obj-3"  # expired: a new object
    with db.read() as txn:
        rows = list(txn.scan("idempotency"))
    assert len(rows) == 1 and rows[0].body["key"] == "old-key-0"  # the other two purged


def test_a_key_within_its_ttl_is_not_purged_by_a_newer_create(db: Database) -> None:
    clock, made = Clock(), []
    limits = Limits(idempotency_ttl_s=60.0)
    clock.now = 1_000_000.75  # its column says 1_000_000: the purge must not trust that alone
    run_idempotent(db, _key("alice", "young-key", b"r", clock, limits), _maker(made))
    clock.now += 60.0  # still live until 1_000_060.75 (the TTL is exclusive)
    clock.now -= 0.5
    run_idempotent(db, _key("alice", "other-key", b"r", clock, limits), _maker(made))
    assert _key("alice", "young-key", b"r", clock, limits).lookup(db) == "obj-0"
    clock.now += 1.0  # now past it: the next create removes it
    run_idempotent(db, _key("alice", "third-key", b"r", clock, limits), _maker(made))
    with db.read() as txn:
        keys = sorted(row.body["key"] for row in txn.scan("idempotency"))
    assert keys == ["other-key", "third-key"]


def test_a_failed_create_records_no_key(db: Database) -> None:
    clock = Clock()

    def fail(txn: Txn) -> str:
        raise ServiceError.permission_denied()

    with pytest.raises(ServiceError):
        run_idempotent(db, _key("alice", "k-12345678", b"req", clock), fail)
    assert _key("alice", "k-12345678", b"req", clock).lookup(db) is None


@pytest.mark.parametrize("value", ["short", "x" * 129, "has space1", "ünïcødé-key", "a/b/c/d/e"])
def test_malformed_keys_are_refused(value: str) -> None:
    with pytest.raises(ServiceError) as e:
        parse_idempotency_key(value, Limits())
    assert e.value.code.name == "INVALID_ARGUMENT" and "idempotency-key" in e.value.message


def test_well_formed_keys_pass() -> None:
    assert parse_idempotency_key(None, Limits()) is None
    assert parse_idempotency_key("0f" * 16, Limits()) == "0f" * 16
    assert parse_idempotency_key("req:2026-12-05_a.b", Limits()) == "req:2026-12-05_a.b"


def test_a_retry_is_answered_before_the_create_validates_again(db: Database) -> None:
    """The key's row is read with the create's rows, and checked first: a retry
    gets the first id even if the request would now be refused."""
    from confide.services._idempotency import run_idempotent_reading
    from confide.storage import Get

    clock, made = Clock(), []
    with db.write() as txn:
        txn.insert("functions", "function-1", {"ok": True}, seq=1, owner="alice")

    def create(txn: Txn, rows: list) -> str:  # type: ignore[type-arg]
        function = rows[0]
        if function is None or not function.body["ok"]:
            raise ServiceError.permission_denied()
        return _maker(made)(txn)

    reads = (Get("functions", "function-1"),)
    key = _key("alice", "k-12345678", b"req", clock)
    first = run_idempotent_reading(db, key, reads, create)
    with db.write() as txn:  # the function's owner disables it meanwhile
        txn.update("functions", "function-1", {"ok": False}, seq=1, owner="alice")
    assert run_idempotent_reading(db, key, reads, create) == first == "obj-0"
    with pytest.raises(ServiceError):  # a new key is refused
        run_idempotent_reading(db, _key("alice", "k-87654321", b"req", clock), reads, create)
    assert made == ["obj-0"]
