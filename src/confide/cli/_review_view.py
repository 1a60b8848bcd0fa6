"""How ``confide task review`` shows a review: as stable JSON, or as text to read."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from ..client import TaskReview

__all__ = ["print_review", "review_dict"]


def review_dict(r: TaskReview) -> dict[str, Any]:
    from ..client import TaskStatus

    f = r.function
    function: dict[str, Any] | None = None
    if f is not None:
        function = {
            "function_id": f.function_id, "name": f.name, "description": f.description,
            "owner": f.owner, "executor_type": f.executor_type, "public": f.public,
            "code_review": f.code_review, "sha256": f.payload_sha256.hex(),
            "code_visible": f.payload_visible, "code_bytes": f.payload_size,
            "code": f.payload.decode("utf-8", "replace") if f.payload_visible else None,
            "arguments": [{"key": k, "default": d, "overwritable": o}
                          for k, d, o in f.arguments],
            "inputs": [{"name": n, "optional": o} for n, o in f.inputs],
            "outputs": [{"name": n, "optional": o} for n, o in f.outputs]}

    def files(items: Any) -> list[dict[str, Any]]:
        return [{"name": x.data_name, "owners": x.owners, "data_id": x.data_id,
                 "cmac": x.cmac.hex()} for x in items]

    return {
        "task_id": r.task_id, "creator": r.creator, "status": TaskStatus(r.status).label,
        "executor": r.executor, "arguments": json.loads(r.function_arguments or "{}"),
        "function": function, "inputs": files(r.inputs), "outputs": files(r.outputs),
        "participants": r.participants, "approved_users": r.approved_users,
        "waiting_for": r.waiting_for,
        "rejections": [{"user_id": x.user_id, "reason": x.reason} for x in r.rejections],
        "log": r.log, "failure_detail": r.failure_detail}


def print_review(r: TaskReview, data: dict[str, Any], *, show_code: bool) -> None:
    echo = typer.echo
    echo(f"task {r.task_id} by {r.creator}: {data['status']} (executor {r.executor})")
    f = r.function
    if f is None:
        echo("function: DELETED since the task was created")
    else:
        echo(f"function {f.name} ({f.function_id})")
        echo(f"  owner:       {f.owner}")
        echo(f"  executor:    {f.executor_type}; {'public' if f.public else 'private'}")
        echo(f"  code sha256: {f.payload_sha256.hex()} ({f.payload_size} bytes)")
        if f.payload_visible:
            how = "public" if f.public else f"code review {f.code_review}"
            echo(f"  code:        readable by you ({how}); " +
                 ("shown below" if show_code else "--show-code or --code-out FILE"))
        else:
            echo("  code:        confidential: you approve it by its hash and owner")
        if f.description:
            echo(f"  description: {f.description}")
    echo("arguments: " + json.dumps(data["arguments"], sort_keys=True))
    for kind, items in (("input", r.inputs), ("output", r.outputs)):
        for x in items:
            where = (f"{x.data_id}" + (f" cmac {x.cmac.hex()}" if x.cmac else "")
                     if x.data_id else "not assigned yet")
            echo(f"{kind} {x.data_name}: owners {', '.join(x.owners)}; {where}")
    echo(f"participants: {', '.join(r.participants)}")
    echo(f"approved: {', '.join(r.approved_users) or 'nobody yet'}")
    if r.waiting_for:
        echo(f"waiting for: {', '.join(r.waiting_for)}")
    for rejection in r.rejections:
        echo(f"rejected by {rejection.user_id}: {rejection.reason or '(no reason)'}")
    for line in r.log:
        echo(f"log: {line}")
    if r.failure_detail:
        echo(f"failure: {r.failure_detail}")
    if show_code and f is not None and f.payload_visible:
        echo("---- code ----")
        echo(f.payload.decode("utf-8", "replace"))
