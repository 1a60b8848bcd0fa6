"""The scale-out backend: the same storage interface and the whole server on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from confide.client import FunctionArgument, TaskStatus
from confide.crypto.records import RecordSealer
from confide.storage import Database, Tampered

from ..platform._server import Server
from ..unit.test_suspend import Ticker

pytestmark = pytest.mark.postgres


def test_rows_are_sealed_and_tamper_evident_on_postgres(pg_url: str) -> None:
    db = Database(pg_url, RecordSealer(os.urandom(32)))
    with db.write() as t:
        t.insert("tasks", "task-1", {"secret": "s3cr3t"}, seq=1, status=0)
    with db.read() as t:
        row = t.get("tasks", "task-1")
        assert row is not None and row.body == {"secret": "s3cr3t"}
    engine = create_engine(pg_url)
    with engine.begin() as c:
        raw = c.execute(text("select body from tasks")).scalar_one()
        assert b"s3cr3t" not in raw
        c.execute(text("update tasks set status = 2"))
    with pytest.raises(Tampered), db.read() as t:
        t.get("tasks", "task-1")
    engine.dispose()
    db.close()


def test_concurrent_leases_never_hand_one_row_to_two_writers(pg_url: str) -> None:
    db = Database(pg_url, RecordSealer(os.urandom(32)))
    with db.write() as t:
        for i in range(40):
            t.insert("queue", f"task-{i}", {"n": i}, seq=i + 1, leased_by="")

    def lease(worker: int) -> list[str]:
        got = []
        while True:
            with db.write() as t:
                rows = list(t.scan("queue", where={"leased_by": ""}, order_by="seq", limit=1,
                                   lock=True))
                if not rows:
                    return got
                row = rows[0]
                t.update("queue", row.id, row.body, seq=row.columns["seq"],
                         leased_by=f"w{worker}")
                got.append(row.id)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lease, range(4)))
    leased = [tid for r in results for tid in r]
    assert sorted(leased) == sorted(f"task-{i}" for i in range(40))  # each exactly once
    db.close()


def test_the_server_runs_tasks_on_postgres_and_survives_a_restart(
        pg_url: str, tmp_path: Path) -> None:
    s = Server(tmp_path / "data", database_url=pg_url).start()
    try:
        admin = s.admin()
        fid = admin.register_function("builtin-echo", executor_type="builtin",
                                      arguments=[FunctionArgument("message")])
        tid = admin.create_task(fid, {"message": "on postgres"}, executor="builtin")
        admin.invoke_task(tid)
        assert admin.wait(tid, 30).return_value == b"on postgres"
        s.stop()
        s.start()
        task = s.admin().get_task(tid)
        assert (task.status, task.return_value) == (TaskStatus.FINISHED, b"on postgres")
    finally:
        s.stop()


def test_database_work_stays_on_the_event_loop_and_waits_parked(pg_url: str,
                                                                tmp_path: Path) -> None:
    """``Database.run`` on PostgreSQL: on the loop's own thread, in a greenlet
    parked while the server answers. A read blocked by another session's lock
    holds neither the loop (a ticker runs on) nor a read of another table."""
    import psycopg

    def read_task() -> str:
        with db.read() as txn:
            assert txn.get("tasks", "t-1") is None
        return threading.current_thread().name

    def read_user() -> str:
        with db.read() as txn:
            assert txn.get("users", "u-1") is None
        return "users read"

    async def main() -> tuple[list[str], int]:
        ticker = Ticker()
        done: list[str] = []
        blocked = asyncio.ensure_future(db.run(read_task))
        blocked.add_done_callback(lambda f: done.append(f.result()))
        done.append(await db.run(read_user))
        await asyncio.sleep(0.3)
        assert not blocked.done()
        locker.rollback()  # lets the blocked read through
        await asyncio.wait_for(blocked, 10)
        return done, ticker.stop()

    db = Database(pg_url, RecordSealer(os.urandom(32)))
    locker = psycopg.connect(pg_url.replace("+psycopg", ""))
    try:
        locker.execute("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")
        done, ticks = asyncio.run(main())
        assert done == ["users read", threading.current_thread().name]
        assert ticks >= 20  # the loop ran all along (0.3 s and more)
    finally:
        locker.close()
        db.close()
    sqlite = Database(f"sqlite:///{tmp_path / 'db.sqlite'}", RecordSealer(os.urandom(32)))
    try:  # SQLite: in place, not even a greenlet (microseconds per statement)
        from confide import _suspend
        assert asyncio.run(sqlite.run(_suspend.suspendable)) is False
    finally:
        sqlite.close()
