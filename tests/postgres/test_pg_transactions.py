"""PostgreSQL transactions as the hot path runs them: pipelined writes, autocommit
reads, connections kept without a ping, a lock timeout, the durability setting."""

from __future__ import annotations

import itertools
import os
import time

import pytest
from sqlalchemy import create_engine, text

from confide.crypto.records import RecordSealer
from confide.storage import Conflict, Database, StorageError
from confide.storage import _db as storage_db

pytestmark = pytest.mark.postgres


def _db(url: str, **kwargs: object) -> Database:
    return Database(url, RecordSealer(os.urandom(32)), **kwargs)  # type: ignore[arg-type]


def test_a_pipelined_update_of_a_missing_row_fails_and_rolls_back(pg_url: str) -> None:
    db = _db(pg_url)
    with pytest.raises(StorageError, match="update hit 0 rows"), db.write() as t:
        t.insert("tasks", "task-1", {"n": 1}, seq=1, status=0)
        t.update("tasks", "task-missing", {"n": 2}, seq=2, status=0)
    with db.read() as t:
        assert t.get("tasks", "task-1") is None  # the insert before it was rolled back
    db.close()


def test_a_pipelined_duplicate_insert_is_a_conflict_and_the_connection_stays_usable(
        pg_url: str) -> None:
    db = _db(pg_url)
    with db.write() as t:
        t.insert("tasks", "task-1", {"n": 1}, seq=1, status=0)
    with pytest.raises(Conflict), db.write() as t:
        t.insert("tasks", "task-1", {"n": 2}, seq=2, status=0)
    with db.write() as t:
        row = t.get("tasks", "task-1", lock=True)
        assert row is not None and row.body == {"n": 1}
        t.update("tasks", "task-1", {"n": 3}, seq=1, status=1)
        t.delete("tasks", "task-gone")
        t.insert("tasks", "task-2", {"n": 4}, seq=2, status=0)
    with db.read() as t:
        assert [r.body["n"] for r in t.scan("tasks", order_by="seq")] == [3, 4]
    db.close()


def test_reads_see_writes_committed_by_another_connection(pg_url: str) -> None:
    sealer = RecordSealer(os.urandom(32))
    a, b = Database(pg_url, sealer), Database(pg_url, sealer)
    with a.read() as t:  # a keeps this connection for its next transaction
        assert t.get("tasks", "task-1") is None
    with b.write() as t:
        t.insert("tasks", "task-1", {"n": 1}, seq=1, status=0)
    with a.read() as t:
        assert t.get("tasks", "task-1") is not None
    a.close()
    b.close()


def test_a_killed_connection_costs_one_failed_transaction_then_reconnects(pg_url: str) -> None:
    db = _db(pg_url)
    with db.read() as t:
        t.get("tasks", "x")
    engine = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:  # what a database restart does to every open connection
        c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    with pytest.raises(StorageError), db.read() as t:
        t.get("tasks", "x")
    with db.write() as t:  # a fresh connection, no error
        t.insert("tasks", "task-1", {"n": 1}, seq=1, status=0)
    engine.dispose()
    db.close()


def test_a_locked_table_fails_the_transaction_after_the_lock_timeout(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage_db, "LOCK_TIMEOUT_MS", 300)
    db = _db(pg_url)
    engine = create_engine(pg_url)
    with engine.connect() as c, c.begin():
        c.execute(text("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE"))
        start = time.monotonic()
        with pytest.raises(StorageError, match=r"LockNotAvailable|lock timeout"), db.write() as t:
            t.insert("tasks", "task-1", {"n": 1}, seq=1, status=0)
        assert time.monotonic() - start < 5
    with db.write() as t:  # the lock is gone: the same database works again
        t.insert("tasks", "task-1", {"n": 1}, seq=1, status=0)
    engine.dispose()
    db.close()


@pytest.mark.parametrize(("mode", "expected"), [("NORMAL", "off"), ("FULL", "on")])
def test_the_durability_setting_maps_to_synchronous_commit(pg_url: str, mode: str,
                                                           expected: str) -> None:
    db = _db(pg_url, synchronous=mode)
    with db.read() as t:
        assert t._execute("SHOW synchronous_commit").fetchone()[0] == expected  # type: ignore[attr-defined]
    db.close()


def test_an_unknown_durability_setting_is_refused(pg_url: str) -> None:
    with pytest.raises(StorageError, match="synchronous"):
        _db(pg_url, synchronous="OFF")


class _RoundTrips:
    """Counts the times a connection waited for the server (libpq's protocol
    trace: each turn from messages sent to messages received is one)."""

    def __init__(self, connection: object) -> None:
        import tempfile

        import psycopg

        self._pgconn = connection.pgconn  # type: ignore[attr-defined]
        self._file = tempfile.TemporaryFile()
        self._pgconn.trace(self._file.fileno())
        self._pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)

    def stop(self) -> int:
        self._pgconn.untrace()
        self._file.seek(0)
        directions = [line[:1] for line in self._file.read().split(b"\n") if line]
        self._file.close()
        return sum(1 for a, b in itertools.pairwise(directions)
                   if a == b"F" and b == b"B")


def _writer_round_trips(db: Database) -> _RoundTrips:
    idle = db._idle  # type: ignore[attr-defined]
    assert len(idle) == 1
    return _RoundTrips(idle[0].raw.driver_connection)


def test_a_write_transaction_without_reads_waits_for_the_server_once(pg_url: str) -> None:
    db = _db(pg_url)
    with db.write() as t:
        t.insert("tasks", "task-1", {"n": 1}, seq=1, status=0)
    trips = _writer_round_trips(db)
    with db.write() as t:  # BEGIN, three writes, a lock and COMMIT: one round trip
        t.serialize("chain")
        t.insert("tasks", "task-2", {"n": 2}, seq=2, status=0)
        t.update("tasks", "task-1", {"n": 3}, seq=1, status=1)
        t.delete("tasks", "task-gone")
    assert trips.stop() == 1
    trips = _writer_round_trips(db)
    with db.write() as t:  # each read is one more
        row = t.get("tasks", "task-2", lock=True)
        assert row is not None
        t.update("tasks", "task-2", {"n": 4}, seq=2, status=1)
    assert trips.stop() == 2
    trips = _writer_round_trips(db)
    with db.write():  # nothing sent: nothing to commit
        pass
    assert trips.stop() == 0
    with db.read() as t:
        assert [r.body["n"] for r in t.scan("tasks", order_by="seq")] == [3, 4]
    db.close()


def test_an_update_of_a_missing_row_among_others_fails_them_all(pg_url: str) -> None:
    db = _db(pg_url)
    with db.write() as t:
        t.insert("tasks", "task-1", {"n": 1}, seq=1, status=0)
    with pytest.raises(StorageError, match="task-1, tasks/task-missing: update hit 0 rows"), \
            db.write() as t:
        t.update("tasks", "task-1", {"n": 2}, seq=1, status=1)
        t.update("tasks", "task-missing", {"n": 2}, seq=2, status=0)
        t.insert("tasks", "task-3", {"n": 3}, seq=3, status=0)
    with db.write() as t:  # the same connection, out of the failed transaction
        assert len(db._idle) == 0  # type: ignore[attr-defined]
        row = t.get("tasks", "task-1")
        assert row is not None and row.body == {"n": 1} and row.columns["status"] == 0
        assert t.get("tasks", "task-3") is None
    db.close()


def test_an_error_raised_by_the_caller_rolls_back_the_pipelined_writes(pg_url: str) -> None:
    db = _db(pg_url)
    with pytest.raises(RuntimeError), db.write() as t:
        t.insert("tasks", "task-1", {"n": 1}, seq=1, status=0)
        raise RuntimeError("the service refused")
    with db.read() as t:
        assert t.get("tasks", "task-1") is None
    with db.write() as t:
        t.insert("tasks", "task-1", {"n": 1}, seq=1, status=0)
    with db.read() as t:
        assert t.get("tasks", "task-1") is not None
    db.close()


def test_delete_below_removes_only_rows_under_the_bound_without_a_wait(pg_url: str) -> None:
    db = _db(pg_url)
    with db.write() as t:
        for n, at in enumerate((10, 19, 20, 21)):
            t.insert("idempotency", f"k{n}", {"n": n}, created_at=at)
    trips = _writer_round_trips(db)
    with db.write() as t:
        t.delete_below("idempotency", "created_at", 20)
    assert trips.stop() == 1  # the commit's: the delete went with it
    with db.read() as t:
        assert sorted(r.id for r in t.scan("idempotency")) == ["k2", "k3"]
    with pytest.raises(StorageError, match="no column"), db.write() as t:
        t.delete_below("idempotency", "created_at; DROP TABLE tasks", 20)
    db.close()


def test_get_many_reads_every_row_in_one_round_trip_and_locks_those_asked(
        pg_url: str) -> None:
    from confide.storage import Get

    db = _db(pg_url)
    with db.write() as t:
        t.insert("tasks", "task-1", {"n": 1}, seq=1, status=0)
        t.insert("functions", "function-1", {"f": 1}, seq=1, owner="alice")
    trips = _writer_round_trips(db)
    with db.write() as t:
        task, missing, function = t.get_many(
            Get("tasks", "task-1", lock=True), Get("tasks", "task-2"),
            Get("functions", "function-1"))
        assert task is not None and task.body == {"n": 1} and missing is None
        assert function is not None and function.columns["owner"] == "alice"
        t.update("tasks", "task-1", {"n": 2}, seq=1, status=1)
    assert trips.stop() == 2  # the reads, then the commit
    engine = create_engine(pg_url)
    with db.write() as t:  # a lock asked for is held: another writer cannot take it
        t.get_many(Get("tasks", "task-1", lock=True))
        with engine.connect() as c, pytest.raises(Exception, match="could not obtain lock"):
            c.execute(text("SET lock_timeout = 100"))
            c.execute(text("SELECT 1 FROM tasks WHERE id = 'task-1' FOR UPDATE NOWAIT"))
    engine.dispose()
    with db.read() as t:  # a read pipelines them too (one sync)
        assert [r is not None for r in t.get_many(Get("tasks", "task-1"),
                                                   Get("tasks", "task-9"))] == [True, False]
    db.close()


def test_check_newest_is_checked_by_the_server_and_fails_once_another_row_is_newer(
        pg_url: str) -> None:
    from confide.storage import Stale

    db = _db(pg_url)
    with db.write() as t:
        first = t.insert("tasks", "task-1", {"n": 1}, seq=1, status=0)
    trips = _writer_round_trips(db)
    with db.write() as t:  # the newest, byte for byte: no read, one round trip
        t.check_newest("tasks", first, "seq")
        second = t.insert("tasks", "task-2", {"n": 2}, seq=2, status=0)
    assert trips.stop() == 1
    with pytest.raises(Stale, match="tasks/task-1"), db.write() as t:
        t.check_newest("tasks", first, "seq")  # task-2 is newer now
        t.insert("tasks", "task-3", {"n": 3}, seq=3, status=0)
    with db.read() as t:
        assert t.get("tasks", "task-3") is None  # rolled back
    engine = create_engine(pg_url)
    with engine.connect() as c, c.begin():  # same id and columns, another (valid) seal
        c.execute(text("UPDATE tasks SET body = (SELECT body FROM tasks WHERE id = 'task-1') "
                       "WHERE id = 'task-2'"))
    engine.dispose()
    with pytest.raises(Stale), db.write() as t:
        t.check_newest("tasks", second, "seq")
    with db.write() as t:  # the connection is fine afterwards
        t.insert("tasks", "task-4", {"n": 4}, seq=4, status=0)
    db.close()


def test_reads_and_writes_share_the_idle_connections_under_one_cap(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every PostgreSQL transaction takes an idle connection (in pipeline mode)
    before opening one, and at most the cap stay idle."""
    import threading

    monkeypatch.setattr(storage_db, "_POSTGRES_IDLE", 3)
    db = _db(pg_url)
    barrier = threading.Barrier(4)

    def write(n: int) -> None:
        with db.write() as t:
            t.insert("tasks", f"task-{n}", {"n": n}, seq=n, status=0)
            barrier.wait(10)  # four writes open at once: four connections

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert len(db._idle) == 3  # type: ignore[attr-defined]
    opened = []
    real = db.engine.raw_connection
    monkeypatch.setattr(db.engine, "raw_connection", lambda: opened.append(1) or real())
    with db.read() as t:
        assert len(list(t.scan("tasks"))) == 4
    with db.write() as t:
        t.insert("tasks", "task-9", {"n": 9}, seq=9, status=0)
    assert opened == [] and len(db._idle) == 3  # type: ignore[attr-defined]
    db.close()
