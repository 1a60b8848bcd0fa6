"""Review before approval: what a participant's approval covers, and what awaits it.

confide.v1 only (Teaclave has no review). Who sees what:

* only the task's participants may review it (as for GetTask);
* the function's SHA-256, owner, executor type and declared arguments and files
  always; its payload only where the participant may read it: the function is
  public, the participant owns it (or is PlatformAdmin), or its owner chose
  ``open`` review (the default for functions registered through confide.v1);
* each data slot's owners, assigned file id and cmac, never a file's URL or key.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

from ...errors import ServiceError
from .._identity import Principal
from .._records import FileRecord, FunctionRecord, TaskRecord, TaskStatus
from ._common import Context

__all__ = ["PendingTask", "ReviewedFile", "Reviews", "TaskReview"]


@dataclass(frozen=True)
class ReviewedFile:
    data_name: str
    owners: list[str]
    data_id: str  # "" until assigned
    cmac: bytes  # b"" until known


@dataclass(frozen=True)
class TaskReview:
    """Everything an approval covers. ``function.payload`` is empty unless visible."""

    task: TaskRecord
    function: FunctionRecord | None  # None: deleted since the task was created
    payload_visible: bool
    payload_sha256: bytes
    payload_size: int
    inputs: list[ReviewedFile]
    outputs: list[ReviewedFile]


@dataclass(frozen=True)
class PendingTask:
    task_id: str
    creator: str
    function_id: str
    function_name: str
    status: TaskStatus
    unassigned: list[str]


def code_visible(function: FunctionRecord, who: Principal) -> bool:
    """May a participant of a task using ``function`` read its payload?"""
    return (function.public or who.is_admin or function.owner == who.user_id
            or function.code_review == "open")


class Reviews:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def review(self, who: Principal, task: TaskRecord) -> TaskReview:
        """The review of ``task`` (loaded by the caller's ``Tasks.get``: participants only)."""
        if who.user_id not in task.participants:
            raise ServiceError.permission_denied()
        with self._ctx.db.read() as txn:
            function = FunctionRecord.load(txn, task.function_id)
            files = {i: FileRecord.load(txn, i) for i in
                     [*task.assigned_inputs.values(), *task.assigned_outputs.values()]}
        digest, size, visible = b"", 0, False
        if function is not None:
            digest = hashlib.sha256(function.payload).digest()
            size = len(function.payload)
            visible = code_visible(function, who)
            function = dataclasses.replace(function, payload=function.payload if visible else b"",
                                           user_allowlist=[])

        def slots(ownership: dict[str, list[str]], assigned: dict[str, str]
                  ) -> list[ReviewedFile]:
            out = []
            for name, owners in sorted(ownership.items()):
                data_id = assigned.get(name, "")
                record = files.get(data_id)
                cmac = record.cmac if record is not None and record.cmac is not None else b""
                out.append(ReviewedFile(name, sorted(owners), data_id, cmac))
            return out

        return TaskReview(task, function, visible, digest, size,
                          slots(task.inputs_ownership, task.assigned_inputs),
                          slots(task.outputs_ownership, task.assigned_outputs))

    def pending(self, who: Principal, limit: int) -> list[PendingTask]:
        """Tasks before staging that ``who`` takes part in and has neither approved nor
        rejected, newest first."""
        out: list[PendingTask] = []
        names: dict[str, str] = {}
        with self._ctx.db.read() as txn:
            for row in txn.scan("tasks", order_by="seq", descending=True):
                if who.user_id not in row.body["participants"]:
                    continue
                task = TaskRecord.from_dict(row.body)
                if (task.status.value >= TaskStatus.APPROVED.value
                        or who.user_id in task.approved_users or who.user_id in task.rejections):
                    continue
                if task.function_id not in names:
                    function = FunctionRecord.load(txn, task.function_id)
                    names[task.function_id] = function.name if function is not None else ""
                out.append(PendingTask(task.id, task.creator, task.function_id,
                                       names[task.function_id], task.status, task.unassigned()))
                if len(out) >= limit:
                    break
        return out
