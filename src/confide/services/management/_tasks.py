"""Tasks and their multi-party state machine (spec §3.7)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from ... import _json
from ...errors import Code, ServiceError, Violation
from ...executor_registry import executor_kind
from ...storage import Get, Row, Txn
from .._idempotency import IdempotencyKey, run_idempotent_reading
from .._identity import Principal, RoleKind
from .._notify import AsyncWaker
from .._records import (
    ApprovalPolicy,
    FileRecord,
    FunctionRecord,
    IdKind,
    TaskRecord,
    TaskResult,
    TaskStatus,
    new_id,
    parse_id,
)
from ._common import Context, allowlisted, check_len, internal
from ._explain import (
    arguments_error,
    check_input_sizes,
    executor_error,
    invalid_task,
    not_approvable,
    not_invocable,
    ownership_violations,
)

__all__ = ["DataAssignment", "DataOwners", "Stage", "Tasks", "Unstage", "not_creator"]

CANCELED_EARLY = "Task canceled"
CANCELED_LATE = "Task Canceled by the user"


class DataOwners(NamedTuple):
    """CreateTask's ownership of one data name: the users who must own its file."""

    data_name: str
    user_ids: Sequence[str]


class DataAssignment(NamedTuple):
    """AssignData's file for one data name."""

    data_name: str
    data_id: str


#: Queues an invoked task in the invoking transaction: ``stage(txn, task, function, files)``
#: (the scheduler's ``stage``; ``files`` by id, every assigned input and output).
Stage = Callable[[Txn, TaskRecord, FunctionRecord, Mapping[str, FileRecord]], None]
#: Drops a canceled task's queue entry in the canceling transaction: ``unstage(txn, task_id)``.
Unstage = Callable[[Txn, str], None]


def _invalid_task() -> ServiceError:
    return ServiceError(Code.INVALID_ARGUMENT, "invalid task id")


def _denied(reason: str, field: str, description: str) -> ServiceError:
    """Teaclave's ``7 permission denied`` with its cause (for a participant)."""
    return ServiceError.permission_denied().with_detail(reason, Violation(field, description))


def not_creator() -> ServiceError:
    """Invoking is the creator's: PERMISSION_DENIED, ``NOT_CREATOR``."""
    return _denied("NOT_CREATOR", "task", "only the task's creator may invoke it")


class Tasks:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    # -- helpers -----------------------------------------------------------
    def _task_id(self, task_id: str) -> str:
        tid = parse_id(task_id)
        if tid is None or not tid.startswith(IdKind.TASK + "-"):
            raise _invalid_task()
        return tid

    def _load(self, txn: Txn, task_id: str, *, lock: bool = True) -> TaskRecord:
        record = TaskRecord.load(txn, self._task_id(task_id), lock=lock)
        if record is None:
            raise _invalid_task()
        return record

    def _save(self, txn: Txn, task: TaskRecord) -> None:
        task.updated_at = self._ctx.clock()
        task.save(txn)

    # -- create ------------------------------------------------------------
    def create(self, who: Principal, function_id: str, arguments_json: str, executor: str,
               inputs_ownership: Sequence[DataOwners],
               outputs_ownership: Sequence[DataOwners],
               idem: IdempotencyKey | None = None,
               extend: Callable[[Txn, TaskRecord], None] | None = None) -> str:
        """Create a task; its id.

        ``extend(txn, task)`` runs in the inserting transaction just before the
        insert (confide.v1 CreateTask sets the approval policy there): if it
        raises, no task is left. It does not run when ``idem`` replays an
        earlier attempt's id.
        """
        lim = self._ctx.limits
        check_len(arguments_json, lim.max_function_arguments_bytes, "function_arguments")
        if len(inputs_ownership) + len(outputs_ownership) > lim.max_list_items:
            raise ServiceError(Code.OUT_OF_RANGE, "too many ownership entries")
        for name, uids in [*inputs_ownership, *outputs_ownership]:
            check_len(name, lim.max_id_chars, "data name")
            if len(uids) > lim.max_list_items:
                raise ServiceError(Code.OUT_OF_RANGE, "too many owners")
            for uid in uids:
                check_len(uid, lim.max_id_chars, "owner id")
        fid = parse_id(function_id)
        if fid is None:
            raise ServiceError(Code.INVALID_ARGUMENT, "invalid function id")

        def insert(txn: Txn, rows: list[Row | None]) -> str:
            # The function is read with the idempotency key in one round trip,
            # and checked in the transaction that creates the task.
            function = None if rows[0] is None else FunctionRecord.from_dict(rows[0].body)
            return self._insert(txn, who, function, arguments_json, executor, inputs_ownership,
                                outputs_ownership, extend)

        return run_idempotent_reading(self._ctx.db, idem, (Get("functions", fid),), insert)

    def _insert(self, txn: Txn, who: Principal, function: FunctionRecord | None,
                arguments_json: str, executor: str,
                inputs_ownership: Sequence[DataOwners],
                outputs_ownership: Sequence[DataOwners],
                extend: Callable[[Txn, TaskRecord], None] | None) -> str:
        if function is None:
            raise ServiceError(Code.INVALID_ARGUMENT, "invalid function id")
        if who.role.is_data_owner_like:
            if not (function.public or allowlisted(function, who)):
                raise ServiceError.permission_denied()
        elif who.role.kind is not RoleKind.PLATFORM_ADMIN:
            raise ServiceError.permission_denied()
        if function.disabled:  # Q5 fix
            raise ServiceError.permission_denied()
        if executor_kind(executor) is None:
            raise executor_error(executor)
        try:
            supplied = json.loads(arguments_json)
        except (ValueError, RecursionError) as e:
            raise internal(f"invalid function_arguments JSON: {e}").with_detail(
                "BAD_ARGUMENTS_JSON", Violation("function_arguments", f"not JSON: {e}")) from e
        if not isinstance(supplied, dict):
            raise internal("function_arguments must be a JSON object").with_detail(
                "BAD_ARGUMENTS_JSON", Violation("function_arguments", "must be a JSON object"))
        wrong = arguments_error(supplied, function.arguments)
        if wrong is not None:
            raise wrong
        final: dict[str, Any] = dict(supplied)
        for argument in function.arguments:
            if not argument.allow_overwrite:
                final[argument.key] = argument.default_value
        inputs = {o.data_name: sorted(set(o.user_ids)) for o in inputs_ownership}
        outputs = {o.data_name: sorted(set(o.user_ids)) for o in outputs_ownership}
        violations = [*ownership_violations("inputs", function.inputs, inputs),
                      *ownership_violations("outputs", function.outputs, outputs)]
        if violations:
            raise invalid_task(*violations, reason="WRONG_DATA_NAMES",
                               hint="list the owners of each data slot the function declares")
        participants = {who.user_id}
        for uids in [*inputs.values(), *outputs.values()]:
            participants.update(uids)
        if not function.public:
            participants.add(function.owner)
        try:
            arguments_text = _json.dumps(final)
        except (ValueError, TypeError) as e:
            raise internal(f"invalid function_arguments: {e}") from e
        now = self._ctx.clock()
        task = TaskRecord(
            id=new_id(IdKind.TASK), seq=txn.next_seq("tasks"), creator=who.user_id,
            function_id=function.id, function_owner=function.owner,
            function_arguments=arguments_text, executor=executor,
            inputs_ownership=inputs, outputs_ownership=outputs,
            participants=sorted(participants), created_at=now, updated_at=now,
            # The function's owner requires signed approvals: the creator
            # completes the policy (SetApprovalPolicy) before anyone signs.
            approval_policy=ApprovalPolicy() if function.require_signed else None,
        )
        if extend is not None:
            extend(txn, task)
        task.insert(txn)
        return task.id

    # -- read --------------------------------------------------------------
    def get(self, who: Principal, task_id: str) -> TaskRecord:
        with self._ctx.db.read() as txn:
            task = self._load(txn, task_id, lock=False)
        if who.user_id not in task.participants:
            raise ServiceError.permission_denied()
        return task

    async def wait(self, who: Principal, task_id: str, timeout_s: float,
                   then: Callable[[], None] | None = None) -> TaskRecord:
        """The task once it is final, or as it is when ``timeout_s`` elapsed.

        Runs on the RPC event loop: it awaits the task's end instead of parking
        a thread; one short database read per wake-up (``Database.run``).
        ``then()`` runs after the read that is returned, in the same hop.
        """
        tid = self._task_id(task_id)
        waker = AsyncWaker()
        self._ctx.notifier.watch(tid, waker)
        try:
            deadline = self._ctx.clock() + timeout_s
            while True:
                task, last = await self._ctx.db.run(self._get_then, who, tid, deadline, then)
                if last:
                    return task
                # re-check at least every second: another node may change it
                await waker.pause(min(deadline - self._ctx.clock(), 1.0))
        finally:
            self._ctx.notifier.unwatch(tid, waker)

    def _get_then(self, who: Principal, task_id: str, deadline: float,
                  then: Callable[[], None] | None) -> tuple[TaskRecord, bool]:
        """The task, and whether it is the one to return (then ``then()`` ran)."""
        task = self.get(who, task_id)
        last = task.status.final or self._ctx.clock() >= deadline
        if last and then is not None:
            then()
        return task, last

    def list_for(self, who: Principal, limit: int) -> list[str]:
        ids: list[str] = []
        with self._ctx.db.read() as txn:
            for row in txn.scan("tasks", order_by="seq", descending=True):
                if who.user_id in row.body["participants"]:
                    ids.append(row.id)
                    if len(ids) >= limit:
                        break
        return ids

    # -- assign ------------------------------------------------------------
    def assign(self, who: Principal, task_id: str, inputs: Sequence[DataAssignment],
               outputs: Sequence[DataAssignment]) -> None:
        if len(inputs) + len(outputs) > self._ctx.limits.max_list_items:
            raise ServiceError(Code.OUT_OF_RANGE, "too many data maps")
        with self._ctx.db.write() as txn:
            task = self._load(txn, task_id)
            if who.user_id not in task.participants:
                raise ServiceError.permission_denied()
            files: dict[str, FileRecord] = {}
            if task.status is not TaskStatus.CREATED:
                raise ServiceError.unknown("failed to assign data to task").with_detail(
                    "WRONG_STATE", Violation("task", "data is assigned while the task is "
                                             f"Created; it is {task.status.label}"))
            for items, kind, ownership, assigned in (
                (inputs, IdKind.INPUT, task.inputs_ownership, task.assigned_inputs),
                (outputs, IdKind.OUTPUT, task.outputs_ownership, task.assigned_outputs),
            ):
                for data_name, data_id in items:
                    fid = parse_id(data_id)
                    if fid is None:
                        raise internal(f"invalid uuid in data id {data_id[:80]!r}")
                    record = FileRecord.load(txn, fid) if fid.startswith(kind + "-") else None
                    field = f"{kind}s.{data_name}"
                    if record is None:
                        raise ServiceError(Code.INVALID_ARGUMENT, "invalid data id").with_detail(
                            "UNKNOWN_DATA", Violation(field, f"no {kind} file {data_id[:80]}"))
                    if who.user_id not in record.owners:
                        raise _denied("NOT_DATA_OWNER", field, f"you do not own {record.id}")
                    if data_name not in ownership:
                        raise _denied("UNKNOWN_DATA_NAME", field,
                                      f"the task has no {kind} named {data_name!r}; its {kind}s "
                                      f"are {', '.join(sorted(ownership)) or 'none'}")
                    if set(record.owners) != set(ownership[data_name]):
                        raise _denied("OWNERS_MISMATCH", field,
                                      f"{data_name} belongs to {', '.join(ownership[data_name])}"
                                      f"; {record.id} is owned by {', '.join(record.owners)}")
                    if data_name in assigned:
                        raise _denied("ALREADY_ASSIGNED", field, f"{data_name} is assigned "
                                      f"already ({assigned[data_name]})")
                    if kind == IdKind.OUTPUT and record.cmac is not None:
                        # Q9 fix: outputs are single-use
                        raise _denied("OUTPUT_USED", field, f"{record.id} was written by an "
                                      "earlier task; register a new output")
                    assigned[data_name] = record.id
                    files[record.id] = record
            for data_id in task.assigned_inputs.values():
                if data_id not in files:
                    record = FileRecord.load(txn, data_id)
                    if record is not None:
                        files[data_id] = record
            check_input_sizes(task, files, self._ctx.limits)
            if task.all_data_assigned():
                task.status = TaskStatus.DATA_ASSIGNED
            self._save(txn, task)

    # -- approve -----------------------------------------------------------
    def approve(self, who: Principal, task_id: str) -> None:
        with self._ctx.db.write() as txn:
            task = self._load(txn, task_id)
            if task.approval_policy is not None and who.user_id in task.participants:
                raise ServiceError(Code.FAILED_PRECONDITION, "failed to approve task").with_detail(
                    "SIGNED_APPROVAL_REQUIRED", Violation(
                        "task", "this task requires signed approvals: confide task approve "
                        "--sign (an unsigned approval does not count)"))
            approvable = task.status is TaskStatus.DATA_ASSIGNED or (
                task.status is TaskStatus.CREATED and task.all_data_assigned())
            if not approvable:
                if who.user_id in task.participants:  # only they may learn why
                    raise not_approvable(task)
                raise ServiceError.unknown("failed to approve task")
            if who.user_id not in task.participants:
                raise ServiceError.permission_denied()
            task.rejections.pop(who.user_id, None)  # approving withdraws one's rejection
            if who.user_id not in task.approved_users:
                task.approved_users = sorted({*task.approved_users, who.user_id})
            task.status = (TaskStatus.APPROVED if task.everyone_approved()
                           else TaskStatus.DATA_ASSIGNED)
            self._save(txn, task)

    # -- reject ------------------------------------------------------------
    def reject(self, who: Principal, task_id: str, reason: str) -> None:
        """Record ``who``'s rejection: it withdraws their approval and blocks invoke.

        Possible until the task is staged; the participant's later approval
        withdraws the rejection. (confide.v1; Teaclave has no rejection.)
        """
        check_len(reason, self._ctx.limits.max_rejection_reason_chars, "rejection reason")
        with self._ctx.db.write() as txn:
            task = self._load(txn, task_id)
            if who.user_id not in task.participants:
                raise ServiceError.permission_denied()
            if task.status.value >= TaskStatus.STAGED.value:
                raise ServiceError(Code.FAILED_PRECONDITION, "task cannot be rejected").with_detail(
                    "WRONG_STATE", Violation("task", f"the task is {task.status.label}: "
                                             "rejections are given before it runs"))
            task.rejections[who.user_id] = reason
            task.signatures.pop(who.user_id, None)
            task.approved_users = [u for u in task.approved_users if u != who.user_id]
            if task.status is TaskStatus.APPROVED:
                task.status = TaskStatus.DATA_ASSIGNED
            self._save(txn, task)

    # -- invoke ------------------------------------------------------------
    def invoke(self, who: Principal, task_id: str, stage: Stage) -> None:
        """Stage the task for execution; ``stage(txn, task, function, files)`` queues it."""
        with self._ctx.db.write() as txn:
            self.invoke_loaded(txn, who, self._load(txn, task_id), stage)
        self._ctx.notifier.work_available()

    def invoke_loaded(self, txn: Txn, who: Principal, task: TaskRecord, stage: Stage) -> None:
        """:meth:`invoke` of ``task``, loaded (locked) in ``txn`` and maybe changed there
        (SignApproval with ``invoke``); the caller wakes the workers after the commit."""
        if task.creator != who.user_id:
            raise not_creator()
        function = FunctionRecord.load(txn, task.function_id, lock=True)
        if function is None:
            raise ServiceError(Code.INVALID_ARGUMENT, "invalid function id")
        if function.usage_quota is not None and function.usage_quota <= function.usage:
            raise ServiceError.unknown("function quota has been used up")
        ready = not task.rejections and (task.status is TaskStatus.APPROVED or (
            task.status in (TaskStatus.CREATED, TaskStatus.DATA_ASSIGNED)
            and task.all_data_assigned() and task.everyone_approved()))
        if not ready:
            raise not_invocable(task)
        if function.disabled:  # Q5 fix
            raise ServiceError.permission_denied()
        files: dict[str, FileRecord] = {}
        for data_id in [*task.assigned_inputs.values(), *task.assigned_outputs.values()]:
            record = FileRecord.load(txn, data_id)
            if record is None:
                raise ServiceError(Code.INVALID_ARGUMENT, "invalid data id")
            files[data_id] = record
        check_input_sizes(task, files, self._ctx.limits)
        function.usage += 1
        function.save(txn)
        task.status = TaskStatus.STAGED
        self._save(txn, task)
        stage(txn, task, function, files)

    # -- cancel ------------------------------------------------------------
    def cancel(self, who: Principal, task_id: str, unstage: Unstage) -> None:
        """Cancel at once in every state; ``unstage(txn, task_id)`` drops the queue entry."""
        with self._ctx.db.write() as txn:
            task = self._load(txn, task_id)
            if task.creator != who.user_id and not who.is_admin:
                raise ServiceError.permission_denied()
            if task.status.final:
                raise ServiceError.unknown(
                    "failed to cancel task, reason: task has already been canceled")
            late = task.status in (TaskStatus.STAGED, TaskStatus.RUNNING)
            if late:
                unstage(txn, task.id)
            task.status = TaskStatus.CANCELED
            task.result = TaskResult.err(CANCELED_LATE if late else CANCELED_EARLY)
            self._save(txn, task)
        self._ctx.notifier.task_ended(task.id)
