"""The queue of staged tasks, executor liveness, cancel and timeouts.

Executors long-poll :meth:`Scheduler.pull` and are woken the moment work is
staged; the task becomes Running in the same transaction that leases it.
While running, the executor's heartbeat long-polls too and is answered
``Stop`` as soon as the task is canceled. An executor that stops
heart-beating (or whose process the supervisor saw die) loses its task to
Failed with a reason. Staged tasks live in the database: a crash loses nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ...executor_registry import MESAPY
from ...mesapy import staged_payload
from ...staged import StagedFile, StagedTask
from ...storage import Database, Row, Txn
from ...telemetry._metrics import (
    SCHEDULER_QUEUE_WAIT_SECONDS,
    TASK_RUN_SECONDS,
    TASKS_COMPLETED,
    executor_label,
)
from .._notify import AsyncWaker, Notifier
from .._records import FileRecord, FunctionRecord, TaskRecord, TaskResult, TaskStatus

__all__ = ["EXECUTOR_TIMEOUT_REASON", "Command", "Scheduler"]

_log = logging.getLogger(__name__)
EXECUTOR_TIMEOUT_REASON = "Runtime Error: Executor Timeout"
_QUEUE = "queue"


class Command:
    NO_ACTION = 0
    STOP = 1


@dataclass
class _Executor:
    last_seen: float


def _leased_by(row: Row) -> str:
    """The executor a queue row is leased to ("" while queued)."""
    return str(row.columns["leased_by"])


def _staged_file(name: str, record: FileRecord) -> StagedFile:
    return StagedFile(name=name, url=record.url, cmac=record.cmac or b"",
                      schema=record.crypto.schema, key=record.crypto.key, iv=record.crypto.iv)


class Scheduler:
    def __init__(self, db: Database, notifier: Notifier, *, clock: Callable[[], float],
                 executor_timeout_s: float) -> None:
        self._db = db
        self._notifier = notifier
        self._clock = clock
        self.executor_timeout_s = executor_timeout_s
        self._executors: dict[str, _Executor] = {}
        self._lock = threading.Lock()
        self._started = clock()

    # -- staging (called by management inside its transaction) -------------
    def stage(self, txn: Txn, task: TaskRecord, function: FunctionRecord,
              files: Mapping[str, FileRecord]) -> None:
        staged = StagedTask(
            task_id=task.id,
            function_id=function.id,
            function_name=function.name,
            function_payload=(staged_payload(function.dialect, function.payload,
                                             function.translation)
                              if function.executor_type == MESAPY.function_type
                              else function.payload),
            executor_type=function.executor_type,
            executor=task.executor,
            function_arguments=task.function_arguments,
            inputs=tuple(_staged_file(n, files[i])
                         for n, i in sorted(task.assigned_inputs.items())),
            outputs=tuple(_staged_file(n, files[i])
                          for n, i in sorted(task.assigned_outputs.items())),
        )
        txn.insert(_QUEUE, task.id, staged.to_dict(), seq=task.seq, leased_by="")

    def unstage(self, txn: Txn, task_id: str) -> None:
        txn.delete(_QUEUE, task_id)

    # -- executors ---------------------------------------------------------
    def _seen(self, executor_id: str) -> None:
        with self._lock:
            self._executors[executor_id] = _Executor(self._clock())

    def live_executors(self) -> int:
        """Executors heard from (pull, heartbeat, report) within the executor timeout."""
        horizon = self._clock() - self.executor_timeout_s
        with self._lock:
            return sum(1 for e in self._executors.values() if e.last_seen >= horizon)

    async def pull(self, executor_id: str, wait_s: float,
                   active: Callable[[], bool] = lambda: True) -> StagedTask | None:
        """Lease the oldest staged task to ``executor_id``; wait up to ``wait_s`` for one.

        ``active`` is polled before every lease attempt: once the caller went
        away (a stopping worker cancels its poll), no task is leased to it.
        Runs on the RPC event loop, awaiting work instead of parking a thread.
        """
        deadline = self._clock() + wait_s
        waker = AsyncWaker()
        while True:
            if not active():
                return None
            self._seen(executor_id)
            seq = self._notifier.work_seq()
            staged = await self._db.run(self._lease, executor_id)
            if staged is not None:
                return staged
            remaining = deadline - self._clock()
            if remaining <= 0:
                return None
            if self._notifier.idle(seq, waker):
                try:
                    # Re-check at least every second: another process may have staged work.
                    await waker.pause(min(remaining, 1.0))
                finally:
                    self._notifier.not_idle(waker)

    async def report_and_pull(self, executor_id: str, task_id: str, result: TaskResult,
                              wait_s: float, active: Callable[[], bool] = lambda: True
                              ) -> StagedTask | None:
        """:meth:`report`, then :meth:`pull` the executor's next task (one round trip)."""
        await self._db.run(self.report, executor_id, task_id, result)
        return await self.pull(executor_id, wait_s, active)

    def _lease(self, executor_id: str) -> StagedTask | None:
        with self._db.write() as txn:
            for row in txn.scan(_QUEUE, where={"leased_by": ""}, order_by="seq", limit=1,
                                lock=True):
                task = TaskRecord.load(txn, row.id, lock=True)
                if task is None or task.status is not TaskStatus.STAGED:
                    txn.delete(_QUEUE, row.id)  # canceled or gone meanwhile
                    continue
                txn.update(_QUEUE, row.id, row.body, seq=row.columns["seq"],
                           leased_by=executor_id)
                task.status = TaskStatus.RUNNING
                staged_at, task.updated_at = task.updated_at, self._clock()
                task.save(txn)
                break
            else:
                return None
        SCHEDULER_QUEUE_WAIT_SECONDS.labels(executor_label(task.executor)).observe(
            max(0.0, task.updated_at - staged_at))
        return StagedTask.from_dict(row.body)

    def heartbeat(self, executor_id: str, task_id: str, wait_s: float) -> int:
        """Liveness; answers STOP when ``task_id`` is no longer this executor's to run."""
        self._seen(executor_id)
        if not task_id:
            return Command.NO_ACTION
        event = threading.Event()
        self._notifier.watch(task_id, event)
        try:
            deadline = self._clock() + wait_s
            while True:
                if not self._still_leased(executor_id, task_id):
                    return Command.STOP
                remaining = deadline - self._clock()
                if remaining <= 0:
                    return Command.NO_ACTION
                event.wait(min(remaining, 1.0))
                event.clear()
                self._seen(executor_id)
        finally:
            self._notifier.unwatch(task_id, event)

    def _still_leased(self, executor_id: str, task_id: str) -> bool:
        with self._db.read() as txn:
            row = txn.get(_QUEUE, task_id)
        return row is not None and _leased_by(row) == executor_id

    def report(self, executor_id: str, task_id: str, result: TaskResult) -> None:
        """Record the result of a task this executor holds; Running → Finished."""
        self._seen(executor_id)
        with self._db.write() as txn:
            row = txn.get(_QUEUE, task_id, lock=True)
            if row is None or _leased_by(row) != executor_id:
                # Canceled or failed meanwhile; the result is dropped.
                return
            task = TaskRecord.load(txn, task_id, lock=True)
            txn.delete(_QUEUE, task_id)
            if task is None or task.status is not TaskStatus.RUNNING:
                return
            if result.ok:
                result = self._record_outputs(txn, task, result)
            task.status = TaskStatus.FINISHED
            task.result = result
            leased_at, task.updated_at = task.updated_at, self._clock()
            task.save(txn)
        self._completed(task, "ok" if result.ok else "error", task.updated_at - leased_at)
        self._notifier.task_ended(task_id)

    @staticmethod
    def _completed(task: TaskRecord, outcome: str, seconds: float) -> None:
        executor = executor_label(task.executor)
        TASKS_COMPLETED.labels(executor, outcome).inc()
        TASK_RUN_SECONDS.labels(executor, outcome).observe(max(0.0, seconds))

    def _record_outputs(self, txn: Txn, task: TaskRecord, result: TaskResult) -> TaskResult:
        if set(result.tags_map) != set(task.assigned_outputs):
            return TaskResult.err("executor reported outputs that do not match the task")
        for name, data_id in task.assigned_outputs.items():
            tag = result.tags_map[name]
            record = FileRecord.load(txn, data_id, lock=True)
            if record is None or record.cmac is not None or len(tag) != 16:
                return TaskResult.err(f"output {name} could not be recorded (written before?)")
            record.cmac = tag
            record.save(txn)
        return result

    # -- failure detection -------------------------------------------------
    def executor_lost(self, executor_id: str, reason: str = EXECUTOR_TIMEOUT_REASON) -> list[str]:
        """Fail every task leased to ``executor_id``; returns their ids."""
        with self._lock:
            self._executors.pop(executor_id, None)
        return self._fail_leases(lambda holder: holder == executor_id, reason)

    def reap(self) -> list[str]:
        """Fail tasks of executors not heard from within the timeout (run periodically)."""
        now = self._clock()
        with self._lock:
            seen = {k: v.last_seen for k, v in self._executors.items()}
        limit = self.executor_timeout_s

        def dead(holder: str) -> bool:
            return now - seen.get(holder, self._started) > limit

        return self._fail_leases(dead, EXECUTOR_TIMEOUT_REASON)

    def _fail_leases(self, is_dead: Callable[[str], bool], reason: str) -> list[str]:
        failed: list[TaskRecord] = []
        ran: list[float] = []
        with self._db.read() as txn:
            leased = [row for row in txn.scan(_QUEUE, exclude={"leased_by": ""})
                      if is_dead(_leased_by(row))]
        if not leased:
            return []
        with self._db.write() as txn:
            for stale in leased:
                row = txn.get(_QUEUE, stale.id, lock=True)
                if row is None or _leased_by(row) != _leased_by(stale):
                    continue
                txn.delete(_QUEUE, row.id)
                task = TaskRecord.load(txn, row.id, lock=True)
                if task is not None and not task.status.final:
                    task.status = TaskStatus.FAILED
                    task.result = TaskResult.err(reason)
                    leased_at, task.updated_at = task.updated_at, self._clock()
                    task.save(txn)
                    failed.append(task)
                    ran.append(task.updated_at - leased_at)
        for task, seconds in zip(failed, ran, strict=True):
            self._completed(task, "failed", seconds)
            _log.warning("task %s failed: %s", task.id, reason, extra={"task_id": task.id})
            self._notifier.task_ended(task.id)
        return [task.id for task in failed]
