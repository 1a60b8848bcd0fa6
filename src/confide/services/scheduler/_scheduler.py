"""The queue of staged tasks, executor liveness, cancel and timeouts.

Executors long-poll :meth:`Scheduler.pull` and are woken the moment work is
staged; the task becomes Running in the same transaction that leases it.
While running, the executor's heartbeat long-polls too and is answered
``Stop`` as soon as the task is canceled. Staged tasks live in the database: a
crash loses nothing.

Leases: a leased queue row carries its deadline (``lease_until``, in the sealed
body, so the untrusted database cannot extend it). Each heartbeat of the
executor renews it; the reaper fails every task whose lease ran out, whatever
the cause (a dead, partitioned, orphaned or stale worker, a lost report), with
Teaclave's executor-timeout text. A lease committed after its caller gave up
(the pull was canceled while the database was slow or locked) is handed back to
the queue at once: that task never started. A process the supervisor saw die
loses its tasks at once. With a ``generation``, only executors whose id carries
it (workers of this server's supervisor) are served.

While the server shuts down (:meth:`Scheduler.drain`), nothing more is leased:
staged tasks stay queued for the next start, running ones may still report.
Several scheduler nodes share one database: each lease also names the node
that granted or last renewed it (``leased_via``, sealed too), so a node that
shuts down waits for, and then fails, only the tasks its own executors hold;
expiry (:meth:`Scheduler.reap`) is the same on every node.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ...errors import Code, ServiceError
from ...staged import StagedFile, StagedTask
from ...storage import Database, Get, Row, Txn
from ...telemetry._metrics import (
    SCHEDULER_QUEUE_WAIT_SECONDS,
    TASK_RUN_SECONDS,
    TASKS_COMPLETED,
    executor_label,
)
from .._approval import staged_approval
from .._notify import AsyncWaker, Notifier
from .._records import FileRecord, FunctionRecord, TaskRecord, TaskResult, TaskStatus

__all__ = ["EXECUTOR_TIMEOUT_REASON", "STALE_EXECUTOR", "Command", "Scheduler"]

_log = logging.getLogger(__name__)
EXECUTOR_TIMEOUT_REASON = "Runtime Error: Executor Timeout"
STALE_EXECUTOR = "executor of an earlier server generation"
_QUEUE = "queue"
_SUPERVISED_ID = re.compile(r"executor-([0-9a-f]{16})-[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}")
_LEASE_UNTIL = "lease_until"  # queue body: when the lease ends unless renewed (epoch s)
_LEASED_VIA = "leased_via"  # queue body: the scheduler node that granted or renewed it
_LEASE_KEYS = frozenset({_LEASE_UNTIL, _LEASED_VIA})


class Command:
    NO_ACTION = 0
    STOP = 1


@dataclass
class _Executor:
    last_seen: float


def _leased_by(row: Row) -> str:
    """The executor a queue row is leased to ("" while queued)."""
    return str(row.columns["leased_by"])


def _without_lease(body: Row | dict[str, object]) -> dict[str, object]:
    data = body.body if isinstance(body, Row) else body
    return {k: v for k, v in data.items() if k not in _LEASE_KEYS}


def _staged_file(name: str, record: FileRecord) -> StagedFile:
    return StagedFile(name=name, url=record.url, cmac=record.cmac or b"",
                      schema=record.crypto.schema, key=record.crypto.key, iv=record.crypto.iv,
                      file_id=record.id, owners=tuple(record.owners))


class Scheduler:
    def __init__(self, db: Database, notifier: Notifier, *, clock: Callable[[], float],
                 executor_timeout_s: float, generation: str | None = None) -> None:
        self._db = db
        self.generation = generation
        # This node's name in the leases it grants (each start is a node of its own).
        self._via = generation or secrets.token_hex(8)
        self._releasing: set[asyncio.Future[None]] = set()
        self._notifier = notifier
        self._clock = clock
        self.executor_timeout_s = executor_timeout_s
        self._executors: dict[str, _Executor] = {}
        self._lock = threading.Lock()
        self._started = clock()
        self._draining = threading.Event()

    # -- staging (called by management inside its transaction) -------------
    def stage(self, txn: Txn, task: TaskRecord, function: FunctionRecord,
              files: Mapping[str, FileRecord]) -> None:
        staged = StagedTask(
            task_id=task.id,
            function_id=function.id,
            function_name=function.name,
            function_payload=function.program(),
            executor_type=function.executor_type,
            executor=task.executor,
            function_arguments=task.function_arguments,
            inputs=tuple(_staged_file(n, files[i])
                         for n, i in sorted(task.assigned_inputs.items())),
            outputs=tuple(_staged_file(n, files[i])
                          for n, i in sorted(task.assigned_outputs.items())),
            approval=staged_approval(txn, task),
        )
        txn.insert(_QUEUE, task.id, staged.to_dict(), seq=task.seq, leased_by="")

    def unstage(self, txn: Txn, task_id: str) -> None:
        txn.delete(_QUEUE, task_id)

    # -- executors ---------------------------------------------------------
    def admit(self, executor_id: str) -> None:
        """Refuse an executor of an earlier server generation (an orphaned worker
        of a server that was killed: it must not take this server's tasks).

        Supervised workers are ``executor-<generation>-<uuid>``; other ids (a
        worker enrolled under a node id of its own) are not generation-bound."""
        match = _SUPERVISED_ID.fullmatch(executor_id)
        if self.generation is not None and match is not None and \
                match.group(1) != self.generation:
            raise ServiceError(Code.FAILED_PRECONDITION, STALE_EXECUTOR)

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
        return await self._pull(executor_id, wait_s, active, None)

    async def report_and_pull(self, executor_id: str, task_id: str, result: TaskResult,
                              wait_s: float, active: Callable[[], bool] = lambda: True
                              ) -> StagedTask | None:
        """:meth:`report`, then :meth:`pull` the executor's next task (one round trip
        for the worker; the report and the first lease attempt share a hop to the
        database, in two transactions)."""
        return await self._pull(executor_id, wait_s, active, (task_id, result))

    async def _pull(self, executor_id: str, wait_s: float, active: Callable[[], bool],
                    report: tuple[str, TaskResult] | None) -> StagedTask | None:
        deadline = self._clock() + wait_s
        waker = AsyncWaker()
        while True:
            if not active():
                if report is not None:
                    await self._db.run(self.report, executor_id, *report)
                return None
            self._seen(executor_id)
            seq = self._notifier.work_seq()
            if self.draining:  # the poll just waits out its time (no busy re-polling)
                if report is not None:
                    await self._db.run(self.report, executor_id, *report)
                staged = None
            else:
                staged = await self._lease_for(executor_id, active, report)
            report = None
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

    async def _lease_for(self, executor_id: str, active: Callable[[], bool],
                         report: tuple[str, TaskResult] | None = None) -> StagedTask | None:
        """:meth:`_lease` (after :meth:`report` of ``report``, in the same hop); a lease
        whose caller went away meanwhile goes back to the queue."""
        leasing = asyncio.ensure_future(self._db.run(self._report_and_lease, executor_id,
                                                     report))
        try:
            staged = await asyncio.shield(leasing)
        except asyncio.CancelledError:
            # The caller gave up while the transaction ran (slow or locked database):
            # whatever it leases when it commits, nobody will run it.
            leasing.add_done_callback(lambda f: self._release_later(f, executor_id))
            raise
        if staged is not None and not active():
            await self._db.run(self.release, executor_id, staged.task_id)
            return None
        return staged

    def _report_and_lease(self, executor_id: str, report: tuple[str, TaskResult] | None
                          ) -> StagedTask | None:
        if report is not None:
            self.report(executor_id, *report)
        return self._lease(executor_id)

    def _release_later(self, leased: asyncio.Future[StagedTask | None],
                       executor_id: str) -> None:
        if leased.cancelled() or leased.exception() is not None or leased.result() is None:
            return
        staged = leased.result()
        assert staged is not None
        release = asyncio.ensure_future(self._db.run(self.release, executor_id, staged.task_id))
        self._releasing.add(release)
        release.add_done_callback(self._released)

    def _released(self, release: asyncio.Future[None]) -> None:
        self._releasing.discard(release)
        if not release.cancelled() and release.exception() is not None:
            # The lease runs out by itself; the reaper ends the task then.
            _log.warning("could not hand back an undelivered lease: %s", release.exception())

    def release(self, executor_id: str, task_id: str) -> None:
        """Hand a lease its executor never received back to the queue (Running → Staged)."""
        with self._db.write() as txn:
            row = txn.get(_QUEUE, task_id, lock=True)
            if row is None or _leased_by(row) != executor_id:
                return
            task = TaskRecord.load(txn, task_id, lock=True)
            if task is None or task.status is not TaskStatus.RUNNING:
                return
            txn.update(_QUEUE, task_id, _without_lease(row), seq=row.columns["seq"],
                       leased_by="")
            task.status = TaskStatus.STAGED
            task.updated_at = self._clock()
            task.save(txn)
        _log.info("task %s handed back to the queue: its pull was gone", task_id,
                  extra={"task_id": task_id})
        self._notifier.work_available()

    def _lease(self, executor_id: str) -> StagedTask | None:
        with self._db.write() as txn:
            for row in txn.scan(_QUEUE, where={"leased_by": ""}, order_by="seq", limit=1,
                                lock=True):
                task = TaskRecord.load(txn, row.id, lock=True)
                if task is None or task.status is not TaskStatus.STAGED:
                    txn.delete(_QUEUE, row.id)  # canceled or gone meanwhile
                    continue
                now = self._clock()
                txn.update(_QUEUE, row.id,
                           {**row.body, _LEASE_UNTIL: now + self.executor_timeout_s,
                            _LEASED_VIA: self._via},
                           seq=row.columns["seq"], leased_by=executor_id)
                task.status = TaskStatus.RUNNING
                staged_at, task.updated_at = task.updated_at, now
                task.save(txn)
                break
            else:
                return None
        SCHEDULER_QUEUE_WAIT_SECONDS.labels(executor_label(task.executor)).observe(
            max(0.0, task.updated_at - staged_at))
        return StagedTask.from_dict(_without_lease(row))

    def heartbeat(self, executor_id: str, task_id: str, wait_s: float) -> int:
        """Renew the lease on ``task_id``; answers STOP when it is no longer this
        executor's to run (canceled, failed, expired)."""
        self._seen(executor_id)
        if not task_id:
            return Command.NO_ACTION
        if not self.renew(executor_id, task_id):
            return Command.STOP
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

    def renew(self, executor_id: str, task_id: str) -> bool:
        """Extend the lease by the executor timeout; False when it is not this
        executor's, or when it already ran out (the reaper ends that task: a lease
        that lapsed while nothing could be written is not brought back)."""
        with self._db.write() as txn:
            row = txn.get(_QUEUE, task_id, lock=True)
            if row is None or _leased_by(row) != executor_id:
                return False
            now = self._clock()
            until = row.body.get(_LEASE_UNTIL)
            if isinstance(until, int | float) and until < now:
                return False
            txn.update(_QUEUE, task_id,
                       {**row.body, _LEASE_UNTIL: now + self.executor_timeout_s,
                        _LEASED_VIA: self._via},
                       seq=row.columns["seq"], leased_by=executor_id)
        return True

    def _still_leased(self, executor_id: str, task_id: str) -> bool:
        with self._db.read() as txn:
            row = txn.get(_QUEUE, task_id)
        return row is not None and _leased_by(row) == executor_id

    def report(self, executor_id: str, task_id: str, result: TaskResult) -> None:
        """Record the result of a task this executor holds; Running → Finished."""
        self._seen(executor_id)
        with self._db.write() as txn:
            # The queue entry and the task in one round trip, both locked.
            row, task_row = txn.get_many(Get(_QUEUE, task_id, lock=True),
                                         Get("tasks", task_id, lock=True))
            if row is None or _leased_by(row) != executor_id:
                # Canceled or failed meanwhile; the result is dropped.
                return
            task = None if task_row is None else TaskRecord.from_dict(task_row.body)
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

    # -- shutdown ------------------------------------------------------------
    def drain(self) -> None:
        """Lease no more tasks (the server is stopping); staged ones stay queued."""
        self._draining.set()

    @property
    def draining(self) -> bool:
        return self._draining.is_set()

    def _ours(self, row: Row) -> bool:
        """Leased through this node (a lease from before ``leased_via`` counts as ours)."""
        return bool(row.body.get(_LEASED_VIA, self._via) == self._via)

    def running(self) -> int:
        """Tasks leased through this node (Running) right now; other scheduler
        nodes' leases are theirs to wait for."""
        with self._db.read() as txn:
            return sum(1 for row in txn.scan(_QUEUE, exclude={"leased_by": ""})
                       if self._ours(row))

    def fail_running(self, reason: str) -> list[str]:
        """Fail every task leased through this node with ``reason``; returns their ids.

        Tasks that other scheduler nodes leased or renewed keep running: a node
        that stops (or serves no scheduler role at all) must not end them."""
        return self._fail_leases(self._ours, reason)

    # -- failure detection -------------------------------------------------
    def executor_lost(self, executor_id: str, reason: str = EXECUTOR_TIMEOUT_REASON) -> list[str]:
        """Fail every task leased to ``executor_id``; returns their ids."""
        with self._lock:
            self._executors.pop(executor_id, None)
        return self._fail_leases(lambda row: _leased_by(row) == executor_id, reason)

    def reap(self) -> list[str]:
        """Fail the tasks whose lease ran out (run periodically); returns their ids."""
        now = self._clock()
        # A lease from before the lease deadline existed ends a timeout after this start.
        legacy = self._started + self.executor_timeout_s

        def expired(row: Row) -> bool:
            until = row.body.get(_LEASE_UNTIL, legacy)
            return not isinstance(until, int | float) or until < now

        return self._fail_leases(expired, EXECUTOR_TIMEOUT_REASON)

    def _fail_leases(self, is_dead: Callable[[Row], bool], reason: str) -> list[str]:
        failed: list[TaskRecord] = []
        ran: list[float] = []
        with self._db.read() as txn:
            leased = [row for row in txn.scan(_QUEUE, exclude={"leased_by": ""})
                      if is_dead(row)]
        if not leased:
            return []
        with self._db.write() as txn:
            for stale in leased:
                row = txn.get(_QUEUE, stale.id, lock=True)
                if row is None or _leased_by(row) != _leased_by(stale) or not is_dead(row):
                    continue  # reported, or renewed, meanwhile
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
