"""The scheduler (queue, leases, liveness, cancel), without gRPC, on the storage seam.

A staged task goes to exactly one executor; only that executor's result
counts; an executor that goes silent or dies loses its task to Failed with a
reason; nothing staged is lost when the server restarts; an operator who edits
the queue in the database is refused.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from confide.services._records import FileRecord, TaskResult, TaskStatus
from confide.services.scheduler import EXECUTOR_TIMEOUT_REASON, Command, Scheduler
from confide.storage import Tampered

from ._services import (
    ALICE,
    EXECUTOR_TIMEOUT_S,
    Platform,
    approve_all,
    platform,
    staged_task,
    three_party_task,
)

TAG = bytes(range(16))


@pytest.fixture
def p(tmp_path: Path) -> Platform:
    return platform(tmp_path)


def _output(p: Platform, output_id: str) -> FileRecord:
    with p.db.read() as txn:
        record = FileRecord.load(txn, output_id)
    assert record is not None
    return record


def test_a_staged_task_is_leased_to_one_executor_only(p: Platform) -> None:
    t = staged_task(p)
    staged = p.pull("executor-1")
    assert staged is not None and staged.task_id == t.task_id
    assert p.pull("executor-2") is None
    assert p.task(t.task_id).status is TaskStatus.RUNNING


def test_the_lease_carries_the_function_the_files_and_the_final_arguments(p: Platform) -> None:
    t = staged_task(p)
    staged = p.pull("executor-1")
    assert staged is not None
    assert (staged.function_id, staged.function_name, staged.executor_type, staged.executor) == (
        t.function_id, "builtin-echo", "builtin", "builtin")
    assert staged.function_arguments == '{"message":"hi","save_log":"false"}'
    assert [(f.name, f.cmac, f.schema) for f in staged.inputs] == [("in", bytes(16),
                                                                    "aes-gcm-128")]
    assert [(f.name, f.cmac) for f in staged.outputs] == [("out", b"")]


def test_oldest_staged_task_runs_first(p: Platform) -> None:
    first, second = staged_task(p), staged_task(p)
    assert [s.task_id for s in (p.pull("e1"), p.pull("e2")) if s] == [first.task_id,
                                                                      second.task_id]


def test_result_from_an_executor_without_the_lease_is_dropped(p: Platform) -> None:
    t = staged_task(p)
    assert p.pull("executor-1") is not None
    p.report("rogue", t.task_id, TaskResult(ok=True, return_value=b"forged",
                                            tags_map={"out": TAG}))
    assert p.task(t.task_id).status is TaskStatus.RUNNING
    assert _output(p, t.output_id).cmac is None
    p.report("executor-1", t.task_id, TaskResult(ok=True, return_value=b"hi",
                                                 tags_map={"out": TAG}))
    task = p.task(t.task_id)
    assert (task.status, task.result) == (TaskStatus.FINISHED, TaskResult(
        ok=True, return_value=b"hi", tags_map={"out": TAG}))
    assert _output(p, t.output_id).cmac == TAG


def test_a_second_report_does_not_overwrite_the_first(p: Platform) -> None:
    t = staged_task(p)
    assert p.pull("executor-1") is not None
    p.report("executor-1", t.task_id, TaskResult(ok=True, return_value=b"1",
                                                 tags_map={"out": TAG}))
    p.report("executor-1", t.task_id, TaskResult(ok=True, return_value=b"2",
                                                 tags_map={"out": bytes(16)}))
    result = p.task(t.task_id).result
    assert result is not None and result.return_value == b"1"
    assert _output(p, t.output_id).cmac == TAG


@pytest.mark.parametrize("tags", [{}, {"other": TAG}, {"out": TAG, "extra": TAG},
                                  {"out": b"short"}])
def test_reported_outputs_must_be_exactly_the_tasks(p: Platform, tags: dict[str, bytes]) -> None:
    t = staged_task(p)
    assert p.pull("executor-1") is not None
    p.report("executor-1", t.task_id, TaskResult(ok=True, tags_map=tags))
    task = p.task(t.task_id)
    assert task.status is TaskStatus.FINISHED
    assert task.result is not None and not task.result.ok
    assert _output(p, t.output_id).cmac is None


def test_a_failed_function_records_no_output(p: Platform) -> None:
    t = staged_task(p)
    assert p.pull("executor-1") is not None
    p.report("executor-1", t.task_id, TaskResult.err("Function not found."))
    assert p.task(t.task_id).result == TaskResult.err("Function not found.")
    assert _output(p, t.output_id).cmac is None


def test_executor_silent_past_the_timeout_loses_its_task(p: Platform) -> None:
    t = staged_task(p)
    assert p.pull("executor-1") is not None
    p.clock.advance(EXECUTOR_TIMEOUT_S + 1)
    assert p.scheduler.reap() == [t.task_id]
    task = p.task(t.task_id)
    assert (task.status, task.result) == (TaskStatus.FAILED,
                                          TaskResult.err(EXECUTOR_TIMEOUT_REASON))
    # Its late result changes nothing.
    p.report("executor-1", t.task_id, TaskResult(ok=True, tags_map={"out": TAG}))
    assert p.task(t.task_id).status is TaskStatus.FAILED
    assert _output(p, t.output_id).cmac is None


def test_heartbeats_keep_the_lease(p: Platform) -> None:
    t = staged_task(p)
    assert p.pull("executor-1") is not None
    for _ in range(3):
        p.clock.advance(EXECUTOR_TIMEOUT_S * 0.75)
        assert p.scheduler.heartbeat("executor-1", t.task_id, 0.0) == Command.NO_ACTION
        assert p.scheduler.reap() == []
    assert p.task(t.task_id).status is TaskStatus.RUNNING


def test_heartbeat_answers_stop_once_the_task_is_canceled(p: Platform) -> None:
    t = staged_task(p)
    assert p.pull("executor-1") is not None
    p.cancel(ALICE, t.task_id)
    assert p.scheduler.heartbeat("executor-1", t.task_id, 0.0) == Command.STOP
    p.report("executor-1", t.task_id, TaskResult(ok=True, tags_map={"out": TAG}))
    assert p.task(t.task_id).status is TaskStatus.CANCELED


def test_heartbeat_for_another_executors_task_answers_stop(p: Platform) -> None:
    t = staged_task(p)
    assert p.pull("executor-1") is not None
    assert p.scheduler.heartbeat("executor-2", t.task_id, 0.0) == Command.STOP


def test_executor_lost_fails_its_tasks_at_once_and_only_its(p: Platform) -> None:
    mine, other = staged_task(p), staged_task(p)
    assert p.pull("executor-1") is not None and p.pull("executor-2") is not None
    reason = "Runtime Error: Executor Lost (worker exited with status -9)"
    assert p.scheduler.executor_lost("executor-1", reason) == [mine.task_id]
    assert p.task(mine.task_id).result == TaskResult.err(reason)
    assert p.task(other.task_id).status is TaskStatus.RUNNING


def test_queued_tasks_survive_a_restart(p: Platform) -> None:
    t = staged_task(p)
    restarted = Scheduler(p.db, p.notifier, clock=p.clock, executor_timeout_s=EXECUTOR_TIMEOUT_S)
    p.scheduler = restarted
    staged = p.pull("executor-1")
    assert staged is not None and staged.task_id == t.task_id


def test_tasks_of_executors_unknown_to_a_restarted_scheduler_time_out(p: Platform) -> None:
    t = staged_task(p)
    assert p.pull("executor-1") is not None
    p.scheduler = Scheduler(p.db, p.notifier, clock=p.clock,
                            executor_timeout_s=EXECUTOR_TIMEOUT_S)
    assert p.scheduler.reap() == []  # a restart grants every lease a full timeout
    p.clock.advance(EXECUTOR_TIMEOUT_S + 1)
    assert p.scheduler.reap() == [t.task_id]


def test_operator_cannot_hand_a_lease_to_another_executor(p: Platform) -> None:
    """Editing ``leased_by`` in the database breaks the row's seal: refused, not obeyed."""
    t = staged_task(p)
    assert p.pull("executor-1") is not None
    with sqlite3.connect(p.db.url.removeprefix("sqlite:///")) as c:
        c.execute("update queue set leased_by = 'rogue'")
    with pytest.raises(Tampered):
        p.report("rogue", t.task_id, TaskResult(ok=True, tags_map={"out": TAG}))
    assert _output(p, t.output_id).cmac is None


def test_operator_cannot_queue_a_task_nobody_approved(p: Platform) -> None:
    """A queue row copied from an approved task under another task's id is refused."""
    approved = staged_task(p)
    pending = three_party_task(p)
    with sqlite3.connect(p.db.url.removeprefix("sqlite:///")) as c:
        body, seq = c.execute("select body, seq from queue").fetchone()
        c.execute("insert into queue (task_id, seq, leased_by, body) values (?, ?, '', ?)",
                  (pending.task_id, seq - 1, body))
    with pytest.raises(Tampered):
        p.pull("executor-1")
    assert p.task(pending.task_id).status is TaskStatus.DATA_ASSIGNED
    assert p.task(approved.task_id).status is TaskStatus.STAGED


def test_invoking_wakes_an_idle_executor(p: Platform) -> None:
    t = three_party_task(p)
    approve_all(p, t)
    seq = p.notifier.work_seq()
    p.invoke(ALICE, t.task_id)
    assert p.notifier.work_seq() != seq


# -- shutdown (docs/operations.md, "Stopping and restarting") --------------------------------
def test_a_draining_scheduler_leases_nothing_and_staged_tasks_stay_queued(p: Platform) -> None:
    running, queued = staged_task(p), staged_task(p)
    assert p.pull("executor-1") is not None
    p.scheduler.drain()
    assert p.scheduler.draining
    assert p.pull("executor-2") is None
    assert p.task(queued.task_id).status is TaskStatus.STAGED
    assert p.scheduler.running() == 1
    # A task running at the drain still reports; its result is committed.
    p.report("executor-1", running.task_id, TaskResult(ok=True, return_value=b"done",
                                                       tags_map={"out": TAG}))
    assert p.task(running.task_id).status is TaskStatus.FINISHED
    assert p.scheduler.running() == 0
    # A scheduler of the next start leases the queued task.
    again = Scheduler(p.db, p.notifier, clock=p.clock, executor_timeout_s=EXECUTOR_TIMEOUT_S)
    staged = asyncio.run(again.pull("executor-3", 0.0))
    assert staged is not None and staged.task_id == queued.task_id


def test_fail_running_fails_only_leased_tasks_with_the_reason(p: Platform) -> None:
    first, second, queued = staged_task(p), staged_task(p), staged_task(p)
    assert p.pull("executor-1") is not None
    assert p.pull("executor-2") is not None
    p.scheduler.drain()
    failed = p.scheduler.fail_running("Runtime Error: Server Shutdown (test)")
    assert sorted(failed) == sorted([first.task_id, second.task_id])
    for t in (first, second):
        task = p.task(t.task_id)
        assert task.status is TaskStatus.FAILED
        assert task.result is not None and task.result.reason == (
            "Runtime Error: Server Shutdown (test)")
    assert p.task(queued.task_id).status is TaskStatus.STAGED
    assert p.scheduler.running() == 0
    # A late result of a failed task is dropped.
    p.report("executor-1", first.task_id, TaskResult(ok=True, return_value=b"late",
                                                     tags_map={"out": TAG}))
    assert p.task(first.task_id).status is TaskStatus.FAILED
