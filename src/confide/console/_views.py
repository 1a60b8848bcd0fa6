"""What the pages show, as plain data for the templates (and the live-state JSON)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from ..client import (
    AuditEntry,
    ParticipantAuditEntry,
    PendingTask,
    Task,
    TaskReview,
    TaskStatus,
)

__all__ = ["audit_rows", "participant_rows", "pending_rows", "review_view", "status_label",
           "task_row"]


def status_label(status: int) -> str:
    try:
        return TaskStatus(status).label
    except ValueError:  # a server newer than this console
        return str(status)


def pending_rows(tasks: list[PendingTask]) -> list[dict[str, Any]]:
    return [{"task_id": p.task_id, "creator": p.creator, "function_id": p.function_id,
             "function_name": p.function_name, "status": status_label(p.status),
             "unassigned": p.unassigned} for p in tasks]


def task_row(task: Task, me: str) -> dict[str, Any]:
    """One of my tasks, as the task list and its live-state poll show it."""
    waiting = sorted(set(task.participants) - set(task.approved_users))
    return {"task_id": task.task_id, "status": task.status_name, "final": task.final,
            "ok": task.ok, "creator": task.creator, "function_id": task.function_id,
            "function_owner": task.function_owner, "approved_users": task.approved_users,
            "waiting_for": waiting, "mine": task.creator == me,
            "can_invoke": task.creator == me and task.status == TaskStatus.APPROVED,
            "result": task.return_value.decode("utf-8", "replace"), "reason": task.reason,
            "outputs": dict(task.assigned_outputs)}


def review_view(r: TaskReview, me: str) -> dict[str, Any]:
    f = r.function
    function: dict[str, Any] | None = None
    if f is not None:
        function = {
            "function_id": f.function_id, "name": f.name, "description": f.description,
            "owner": f.owner, "executor_type": f.executor_type, "public": f.public,
            "code_review": f.code_review, "sha256": f.payload_sha256.hex(),
            "code_visible": f.payload_visible, "code_bytes": f.payload_size,
            "code": f.payload.decode("utf-8", "replace") if f.payload_visible else None,
            "arguments": f.arguments, "inputs": f.inputs, "outputs": f.outputs}
    try:
        arguments = json.dumps(json.loads(r.function_arguments or "{}"), indent=2,
                               sort_keys=True)
    except ValueError:
        arguments = r.function_arguments

    def files(items: Any) -> list[dict[str, Any]]:
        return [{"name": x.data_name, "owners": x.owners, "data_id": x.data_id,
                 "cmac": x.cmac.hex()} for x in items]

    status = status_label(r.status)
    final = r.status in {s for s in TaskStatus if s.final}
    return {
        "task_id": r.task_id, "creator": r.creator, "status": status, "final": final,
        "executor": r.executor, "arguments": arguments, "function": function,
        "inputs": files(r.inputs), "outputs": files(r.outputs),
        "participants": r.participants, "approved_users": r.approved_users,
        "waiting_for": r.waiting_for,
        "rejections": [{"user_id": x.user_id, "reason": x.reason} for x in r.rejections],
        "log": r.log, "failure_detail": r.failure_detail,
        "i_participate": me in r.participants,
        "i_approved": me in r.approved_users,
        "can_decide": me in r.participants and r.status < TaskStatus.STAGED,
        "can_invoke": r.creator == me and r.status == TaskStatus.APPROVED}


def audit_rows(entries: list[AuditEntry]) -> list[dict[str, Any]]:
    return [{"time": dt.datetime.fromtimestamp(e.microsecond / 1e6, dt.UTC)
             .strftime("%Y-%m-%d %H:%M:%S UTC"),
             "user": e.user or "-", "message": e.message, "ok": e.result} for e in entries]


def participant_rows(entries: list[ParticipantAuditEntry]) -> list[dict[str, Any]]:
    """A participant's verified entries: RFC 3339 time, who, call, result, subjects."""
    return [{"seq": e.seq, "time": e.time, "actor": e.actor or "-", "message": e.message,
             "ok": e.result, "tasks": list(e.task_ids),
             "others": [*e.function_ids, *e.file_ids]} for e in entries]
