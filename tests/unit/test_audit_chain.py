"""The audit log detects edits, deletions, insertions and reordering."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from confide.crypto.records import RecordSealer
from confide.services.audit import AuditChainBroken, AuditLog, QuerySyntaxError
from confide.storage import Database

KEY = b"k" * 32


def _log(tmp_path: Path) -> tuple[Database, AuditLog]:
    db = Database(f"sqlite:///{tmp_path / 'a.db'}", RecordSealer(b"s" * 32))
    log = AuditLog(db, KEY, clock=lambda: 1.0)
    for i in range(5):
        log.append(user=f"{{ user: u{i}, role: PlatformAdmin }}", message=f"get_task {i}",
                   result=True, ip=bytes(16))
    return db, log


def test_an_untouched_chain_verifies(tmp_path: Path) -> None:
    _, log = _log(tmp_path)
    assert log.verify_chain() == 5


def test_deleting_an_entry_is_detected(tmp_path: Path) -> None:
    _, log = _log(tmp_path)
    with sqlite3.connect(tmp_path / "a.db") as c:
        c.execute("delete from audit where seq = 3")
    with pytest.raises(AuditChainBroken, match="#3 is missing"):
        log.verify_chain()


def test_reordering_entries_is_detected(tmp_path: Path) -> None:
    _, log = _log(tmp_path)
    with sqlite3.connect(tmp_path / "a.db") as c:
        b2 = c.execute("select body from audit where seq = 2").fetchone()[0]
        b4 = c.execute("select body from audit where seq = 4").fetchone()[0]
        c.execute("update audit set body = ? where seq = 2", (b4,))
        c.execute("update audit set body = ? where seq = 4", (b2,))
    with pytest.raises(Exception):  # noqa: B017 - Tampered or AuditChainBroken, both refuse
        log.verify_chain()


def test_truncating_the_newest_entries_while_running_fails_closed(tmp_path: Path) -> None:
    _, log = _log(tmp_path)
    with sqlite3.connect(tmp_path / "a.db") as c:
        c.execute("delete from audit where seq >= 4")
    with pytest.raises(AuditChainBroken, match="truncated"):
        log.append(user="", message="x", result=False, ip=bytes(16))


def test_a_chain_under_another_key_does_not_verify(tmp_path: Path) -> None:
    db, _ = _log(tmp_path)
    with pytest.raises(AuditChainBroken):
        AuditLog(db, os.urandom(32), clock=lambda: 1.0).verify_chain()


def test_query_semantics(tmp_path: Path) -> None:
    _, log = _log(tmp_path)
    assert [e.seq for e in log.query("get_task", 2)] == [5, 4]  # newest first, limit
    assert [e.seq for e in log.query('user:u3', 10)] == [4]
    assert [e.seq for e in log.query('+task -"task 2"', 10)] == [5, 4, 2, 1]
    assert log.query("-task", 10) == []  # purely negative matches nothing
    assert [e.seq for e in log.query("get_task AND 1", 10)] == [2]
    for bad in ('"open', "nofield:x", "AND x", "x AND", ""):
        with pytest.raises(QuerySyntaxError):
            log.query(bad, 10)


def _all_return(run: Callable[[int], None], threads: int) -> None:
    """Run ``run(0..threads-1)`` on as many threads; fail if any of them hangs."""
    started = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for th in started:
        th.start()
    for th in started:
        th.join(timeout=60)
    assert not any(th.is_alive() for th in started)


def test_concurrent_appends_are_group_committed_and_all_land(tmp_path: Path) -> None:
    _, log = _log(tmp_path)
    batches: list[int] = []
    write = log._write

    def slow_write(batch: list[Any]) -> Exception | None:
        batches.append(len(batch))
        time.sleep(0.002)  # long enough for others to queue behind the leader
        return write(batch)

    log._write = slow_write  # type: ignore[method-assign]

    def run(t: int) -> None:
        for i in range(40):
            log.append(user=f"u{t}", message=f"m{i}", result=True, ip=bytes(16))

    _all_return(run, 12)
    assert sum(batches) == 12 * 40
    assert max(batches) > 1 and len(batches) < 12 * 40
    assert log.verify_chain() == 5 + 12 * 40


def test_a_failed_group_commit_fails_its_callers_and_the_next_ones_proceed(
        tmp_path: Path) -> None:
    _, log = _log(tmp_path)
    write = log._write
    failures = [True]

    def failing_once(batch: list[Any]) -> Exception | None:
        if failures.pop() if failures else False:
            time.sleep(0.01)
            return RuntimeError("disk full")
        return write(batch)

    log._write = failing_once  # type: ignore[method-assign]
    errors: list[str] = []

    def run(i: int) -> None:
        try:
            log.append(user="u", message=f"m{i}", result=True, ip=bytes(16))
        except RuntimeError as e:
            errors.append(str(e))

    _all_return(run, 8)
    assert errors and set(errors) == {"disk full"}
    assert log.verify_chain() == 5 + 8 - len(errors)


def test_two_logs_on_one_database_take_turns_and_the_chain_verifies(tmp_path: Path) -> None:
    """Another process appending makes this one's known head stale: it reads and
    verifies the newest entry instead of chaining from its own."""
    db, a = _log(tmp_path)
    b = AuditLog(db, KEY, clock=lambda: 1.0)
    for i in range(3):
        a.append(user="", message=f"a {i}", result=True, ip=bytes(16))
        b.append(user="", message=f"b {i}", result=True, ip=bytes(16))
    assert a.verify_chain() == 11


def test_the_head_replaced_by_an_older_entry_is_refused(tmp_path: Path) -> None:
    """A replayed (validly sealed) entry in place of the newest: the database's
    check fails, and the read that follows finds the chain edited."""
    _, log = _log(tmp_path)
    with sqlite3.connect(tmp_path / "a.db") as c:
        c.execute("delete from audit where seq = 5")
        b4 = c.execute("select body from audit where seq = 4").fetchone()[0]
        c.execute("insert into audit (seq, body) values (5, ?)", (b4,))
    with pytest.raises(Exception):  # noqa: B017 - Tampered (the seal binds the id) or broken
        log.append(user="", message="x", result=False, ip=bytes(16))
