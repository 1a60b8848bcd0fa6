"""Leases on PostgreSQL, in the failures the issue measured: a lease committed after
the worker's pull gave up (the database locked), and a report dropped by a
database error. No task stays Running longer than the lease timeout after its
worker stops renewing."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from confide.crypto.records import RecordSealer
from confide.services._records import TaskResult, TaskStatus
from confide.services.scheduler import EXECUTOR_TIMEOUT_REASON
from confide.storage import Database, StorageError
from confide.storage import _db as storage_db

from ..unit._services import EXECUTOR_TIMEOUT_S, Platform, platform, staged_task

pytestmark = pytest.mark.postgres
TAG = bytes(range(16))


@pytest.fixture
def p(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Platform:
    monkeypatch.setattr(storage_db, "LOCK_TIMEOUT_MS", 2000)
    db = Database(pg_url, RecordSealer(os.urandom(32)))
    yield platform(tmp_path, db=db)  # type: ignore[misc]
    db.close()


def test_a_lease_committed_after_the_pull_gave_up_goes_back_to_the_queue(
        p: Platform, pg_url: str) -> None:
    t = staged_task(p)
    engine = create_engine(pg_url)
    released: list[str] = []
    release = p.scheduler.release

    def spy(executor_id: str, task_id: str) -> None:
        release(executor_id, task_id)
        released.append(task_id)

    p.scheduler.release = spy  # type: ignore[method-assign]

    async def scenario() -> None:
        with engine.connect() as locker:
            locker.begin()
            locker.execute(text("LOCK TABLE queue IN ACCESS EXCLUSIVE MODE"))
            pull = asyncio.ensure_future(p.scheduler.pull("executor-1", 5.0))
            await asyncio.sleep(0.3)  # the lease transaction waits for the lock
            pull.cancel()  # the worker's deadline: its pull gives up
            with pytest.raises(asyncio.CancelledError):
                await pull
            locker.commit()  # the lock goes; the lease commits now, to nobody
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not released:
            await asyncio.sleep(0.05)

    asyncio.run(scenario())
    engine.dispose()
    assert released == [t.task_id]  # it was leased, then handed back
    assert p.task(t.task_id).status is TaskStatus.STAGED
    staged = p.pull("executor-2")
    assert staged is not None and staged.task_id == t.task_id


def test_a_lease_committed_to_a_vanished_caller_ends_within_the_lease_timeout(
        p: Platform) -> None:
    """If even handing it back fails, the lease still runs out: Failed, not Running."""
    t = staged_task(p)
    assert p.pull("executor-1") is not None  # delivered to nobody; never renewed
    p.clock.advance(EXECUTOR_TIMEOUT_S + 0.1)
    assert p.scheduler.reap() == [t.task_id]
    assert p.task(t.task_id).result == TaskResult.err(EXECUTOR_TIMEOUT_REASON)


def test_a_report_dropped_by_a_database_error_is_retried_then_recorded_once(
        p: Platform, pg_url: str) -> None:
    t = staged_task(p)
    assert p.pull("executor-1") is not None
    result = TaskResult(ok=True, return_value=b"hi", tags_map={"out": TAG})
    engine = create_engine(pg_url)
    with engine.connect() as locker:
        locker.begin()
        locker.execute(text("LOCK TABLE queue IN ACCESS EXCLUSIVE MODE"))
        with pytest.raises(StorageError):  # the worker sees INTERNAL/UNAVAILABLE: retries
            p.report("executor-1", t.task_id, result)
        locker.commit()
    engine.dispose()
    assert p.task(t.task_id).status is TaskStatus.RUNNING
    p.report("executor-1", t.task_id, result)  # the retry
    p.report("executor-1", t.task_id, result)  # and one more after a lost acknowledgement
    task = p.task(t.task_id)
    assert (task.status, task.result.return_value) == (TaskStatus.FINISHED, b"hi")


def test_a_report_that_never_gets_through_ends_in_the_lease_timeout(
        p: Platform, pg_url: str) -> None:
    t = staged_task(p)
    assert p.pull("executor-1") is not None
    engine = create_engine(pg_url)
    with engine.connect() as locker:
        locker.begin()
        locker.execute(text("LOCK TABLE queue IN ACCESS EXCLUSIVE MODE"))
        with pytest.raises(StorageError):
            p.report("executor-1", t.task_id, TaskResult(ok=True, tags_map={"out": TAG}))
        with pytest.raises(StorageError):  # the reaper cannot write either, meanwhile
            p.clock.advance(EXECUTOR_TIMEOUT_S + 0.1)
            p.scheduler.reap()
        locker.commit()
    engine.dispose()
    assert p.scheduler.reap() == [t.task_id]  # the first round after the database is back
    assert p.task(t.task_id).result == TaskResult.err(EXECUTOR_TIMEOUT_REASON)


def test_two_scheduler_nodes_on_postgres_stop_and_reap_only_what_they_must(
        p: Platform) -> None:
    """Several scheduler nodes share PostgreSQL: a node that stops fails only the
    tasks leased through it, and a lease of a node that died is reaped by another."""
    from ..unit.test_leases import SHUTDOWN, other_node

    b = other_node(p)
    staged_task(p), staged_task(p)
    mine = asyncio.run(p.scheduler.pull("executor-a", 0.0))
    theirs = asyncio.run(b.pull("executor-b", 0.0))
    assert mine is not None and theirs is not None
    assert (p.scheduler.running(), b.running()) == (1, 1)
    assert p.scheduler.fail_running(SHUTDOWN) == [mine.task_id]
    assert p.task(theirs.task_id).status is TaskStatus.RUNNING
    p.clock.advance(EXECUTOR_TIMEOUT_S + 1)  # node b died: nobody renews its lease
    assert p.scheduler.reap() == [theirs.task_id]
    assert p.task(theirs.task_id).result == TaskResult.err(EXECUTOR_TIMEOUT_REASON)
