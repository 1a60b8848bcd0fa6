"""Leases that cannot leak (issue 12 item 4), on the storage seam with a clock the test moves.

No task stays Running longer than the lease timeout after its worker stops
renewing, whatever the worker still does otherwise; a lease its caller never
received goes back to the queue; a worker of an earlier server generation is
refused; reports are idempotent.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from confide.errors import Code, ServiceError
from confide.services._records import TaskResult, TaskStatus
from confide.services.scheduler import (
    EXECUTOR_TIMEOUT_REASON,
    STALE_EXECUTOR,
    Command,
    Scheduler,
)

from ._services import EXECUTOR_TIMEOUT_S, Platform, platform, staged_task

TAG = bytes(range(16))


@pytest.fixture
def p(tmp_path: Path) -> Platform:
    return platform(tmp_path)


def test_a_worker_that_keeps_pulling_but_stops_renewing_loses_its_task(p: Platform) -> None:
    """The orphan of a killed server: alive (it pulls) but no longer renewing the lease."""
    t = staged_task(p)
    assert p.pull("executor-1") is not None
    for _ in range(4):
        p.clock.advance(EXECUTOR_TIMEOUT_S / 4 + 0.1)
        assert p.pull("executor-1") is None  # heard from, but not about its task
    assert p.scheduler.reap() == [t.task_id]
    task = p.task(t.task_id)
    assert (task.status, task.result) == (TaskStatus.FAILED,
                                          TaskResult.err(EXECUTOR_TIMEOUT_REASON))


def test_a_renewed_lease_ends_one_timeout_after_the_last_renewal(p: Platform) -> None:
    t = staged_task(p)
    assert p.pull("executor-1") is not None
    for _ in range(5):
        p.clock.advance(EXECUTOR_TIMEOUT_S * 0.9)
        assert p.scheduler.heartbeat("executor-1", t.task_id, 0.0) == Command.NO_ACTION
        assert p.scheduler.reap() == []
    p.clock.advance(EXECUTOR_TIMEOUT_S - 0.5)
    assert p.scheduler.reap() == []
    p.clock.advance(1.0)
    assert p.scheduler.reap() == [t.task_id]
    # The executor learns it at its next heartbeat, and its late result changes nothing.
    assert p.scheduler.heartbeat("executor-1", t.task_id, 0.0) == Command.STOP
    p.report("executor-1", t.task_id, TaskResult(ok=True, tags_map={"out": TAG}))
    assert p.task(t.task_id).status is TaskStatus.FAILED


def test_a_lapsed_lease_is_not_renewed_before_the_reaper_runs(p: Platform) -> None:
    """A full disk or a stalled reaper: the lease ran out, nothing failed the task yet,
    and the worker's next heartbeat gets through first. It must not bring the lease
    back (the task would run on past its timeout): it is told to stop, and the
    reaper ends the task."""
    t = staged_task(p)
    assert p.pull("executor-1") is not None
    p.clock.advance(EXECUTOR_TIMEOUT_S + 0.5)
    assert p.scheduler.renew("executor-1", t.task_id) is False
    assert p.scheduler.heartbeat("executor-1", t.task_id, 0.0) == Command.STOP
    assert p.scheduler.reap() == [t.task_id]
    assert p.task(t.task_id).status is TaskStatus.FAILED


def test_another_executor_cannot_renew_a_lease(p: Platform) -> None:
    t = staged_task(p)
    assert p.pull("executor-1") is not None
    p.clock.advance(EXECUTOR_TIMEOUT_S * 0.9)
    assert p.scheduler.renew("executor-2", t.task_id) is False
    assert p.scheduler.heartbeat("executor-2", t.task_id, 0.0) == Command.STOP
    p.clock.advance(EXECUTOR_TIMEOUT_S * 0.2)
    assert p.scheduler.reap() == [t.task_id]


def test_a_lease_whose_caller_went_away_goes_back_to_the_queue(p: Platform) -> None:
    t = staged_task(p)
    calls = []

    def active() -> bool:  # active before leasing, gone right after (deadline passed)
        calls.append(1)
        return len(calls) < 2

    assert asyncio.run(p.scheduler.pull("executor-1", 0.0, active)) is None
    assert p.task(t.task_id).status is TaskStatus.STAGED
    staged = p.pull("executor-2")
    assert staged is not None and staged.task_id == t.task_id
    assert p.task(t.task_id).status is TaskStatus.RUNNING
    # The first caller's id no longer holds it.
    assert p.scheduler.heartbeat("executor-1", t.task_id, 0.0) == Command.STOP


def test_release_only_hands_back_the_callers_own_lease(p: Platform) -> None:
    t = staged_task(p)
    assert p.pull("executor-1") is not None
    p.scheduler.release("executor-2", t.task_id)
    assert p.task(t.task_id).status is TaskStatus.RUNNING
    assert p.scheduler.heartbeat("executor-1", t.task_id, 0.0) == Command.NO_ACTION


def test_reports_are_idempotent(p: Platform) -> None:
    t = staged_task(p)
    assert p.pull("executor-1") is not None
    first = TaskResult(ok=True, return_value=b"one", tags_map={"out": TAG})
    p.report("executor-1", t.task_id, first)
    p.report("executor-1", t.task_id, first)  # a retry after a lost acknowledgement
    p.report("executor-1", t.task_id, TaskResult(ok=True, return_value=b"two",
                                                 tags_map={"out": bytes(16)}))
    task = p.task(t.task_id)
    assert (task.status, task.result.return_value) == (TaskStatus.FINISHED, b"one")


def test_a_worker_of_an_earlier_generation_is_refused(p: Platform) -> None:
    scheduler = Scheduler(p.db, p.notifier, clock=p.clock, executor_timeout_s=EXECUTOR_TIMEOUT_S,
                          generation="0123456789abcdef")
    uid = "01234567-89ab-cdef-0123-456789abcdef"
    scheduler.admit(f"executor-0123456789abcdef-{uid}")
    scheduler.admit("executor-on-another-host")  # enrolled under its own node id
    with pytest.raises(ServiceError) as e:
        scheduler.admit(f"executor-fedcba9876543210-{uid}")
    assert e.value.code == Code.FAILED_PRECONDITION and STALE_EXECUTOR in str(e.value)


def test_a_scheduler_without_a_generation_admits_any_executor(p: Platform) -> None:
    p.scheduler.admit("executor-anything")


def test_a_lease_survives_a_restart_with_its_own_deadline(p: Platform) -> None:
    t = staged_task(p)
    assert p.pull("executor-1") is not None
    p.clock.advance(EXECUTOR_TIMEOUT_S * 0.6)
    p.scheduler = Scheduler(p.db, p.notifier, clock=p.clock,
                            executor_timeout_s=EXECUTOR_TIMEOUT_S)
    assert p.scheduler.reap() == []
    p.clock.advance(EXECUTOR_TIMEOUT_S * 0.5)  # past the deadline set before the restart
    assert p.scheduler.reap() == [t.task_id]


# -- several scheduler nodes on one database (issue 12 item 8) ------------------
SHUTDOWN = "Runtime Error: Server Shutdown (test)"


def other_node(p: Platform, generation: str = "b" * 16) -> Scheduler:
    """A second scheduler node on the same database (another host's ``confide serve``)."""
    from confide.services._notify import Notifier

    return Scheduler(p.db, Notifier(), clock=p.clock, executor_timeout_s=EXECUTOR_TIMEOUT_S,
                     generation=generation)


def _pull(scheduler: Scheduler, executor_id: str) -> str:
    staged = asyncio.run(scheduler.pull(executor_id, 0.0))
    assert staged is not None
    return staged.task_id


def test_a_stopping_scheduler_node_fails_only_the_tasks_leased_through_it(p: Platform) -> None:
    """A rolling restart of one node must not end the tasks another node's workers run."""
    b = other_node(p)
    staged_task(p), staged_task(p)
    mine, theirs = _pull(p.scheduler, "executor-a"), _pull(b, "executor-b")
    assert (p.scheduler.running(), b.running()) == (1, 1)
    assert p.scheduler.fail_running(SHUTDOWN) == [mine]
    assert p.task(mine).status is TaskStatus.FAILED
    assert p.task(theirs).status is TaskStatus.RUNNING
    b.report("executor-b", theirs, TaskResult(ok=True, tags_map={"out": TAG}))
    assert p.task(theirs).status is TaskStatus.FINISHED


def test_a_node_without_leases_fails_nothing_when_it_stops(p: Platform) -> None:
    """A frontend-only node drains too: it has no running task of its own."""
    staged_task(p)
    tid = _pull(p.scheduler, "executor-a")
    frontend = other_node(p, "c" * 16)
    assert frontend.running() == 0
    assert frontend.fail_running(SHUTDOWN) == []
    assert p.task(tid).status is TaskStatus.RUNNING


def test_a_renewal_through_another_node_makes_the_lease_that_nodes(p: Platform) -> None:
    """A worker behind a balancer may renew through another node: that node now
    holds the lease, the one that granted it no longer waits for it."""
    b = other_node(p)
    staged_task(p)
    tid = _pull(p.scheduler, "executor-a")
    assert b.heartbeat("executor-a", tid, 0.0) == Command.NO_ACTION
    assert (p.scheduler.running(), b.running()) == (0, 1)
    assert p.scheduler.fail_running(SHUTDOWN) == []
    assert b.fail_running(SHUTDOWN) == [tid]


def test_a_lease_granted_by_a_killed_node_is_reaped_by_another(p: Platform) -> None:
    """kill -9 of a scheduler host: nobody renews its leases; any node's reaper ends them."""
    b = other_node(p)
    staged_task(p)
    tid = _pull(b, "executor-b")
    del b  # the node is gone
    p.clock.advance(EXECUTOR_TIMEOUT_S - 0.5)
    assert p.scheduler.reap() == []
    p.clock.advance(1.0)
    assert p.scheduler.reap() == [tid]
    task = p.task(tid)
    assert (task.status, task.result) == (TaskStatus.FAILED,
                                          TaskResult.err(EXECUTOR_TIMEOUT_REASON))
