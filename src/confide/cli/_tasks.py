"""``confide task …``: create, assign, review, approve or reject, invoke, watch and list tasks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..executor_registry import EXECUTOR_KINDS
from . import _exit
from ._common import Json, emit, err, fail, run, session_client
from ._input import UsageError, parse_json_object, parse_pairs

if TYPE_CHECKING:
    from ..client import Client, Task, TaskReview

__all__ = ["app"]

_EXECUTOR_HELP = ", ".join(k.executor if k.executor == k.function_type
                           else f"{k.executor} ({k.function_type} functions)"
                           for k in EXECUTOR_KINDS)

app = typer.Typer(no_args_is_help=True, help="Tasks.")


def _ownership(items: list[str] | None, option: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, uids in parse_pairs(items, option, "name=uid1,uid2").items():
        owners = [u for u in uids.split(",") if u]
        if not owners:
            raise UsageError(f"{option} {name}=: name at least one owner")
        out[name] = owners
    return out


@app.command("create")
def create(
    function_id: str,
    executor: Annotated[str, typer.Option(help=_EXECUTOR_HELP)],
    arguments: Annotated[str, typer.Option(help="JSON object, e.g. '{\"num_user\": 2}'")] = "{}",
    input_owner: Annotated[list[str] | None, typer.Option(help="name=uid1,uid2")] = None,
    output_owner: Annotated[list[str] | None, typer.Option(help="name=uid1,uid2")] = None,
    require_signed: Annotated[bool, typer.Option(
        "--require-signed", help="Require signed approvals, set in the same call: every "
        "participant signs, for a day, on the execution service's measurement in the "
        "verified enclave_info (`task policy` for groups or another expiry).")] = False,
    json_out: Json = False,
) -> None:
    """Create a task; prints its id."""
    def go() -> None:
        args = parse_json_object(arguments, "--arguments")
        inputs = _ownership(input_owner, "--input-owner")
        outputs = _ownership(output_owner, "--output-owner")
        if require_signed:
            from ._signing import session_measurements

            tid, _statement = session_client().create_signed_task(
                function_id, args, executor=executor, measurements=session_measurements(),
                inputs_ownership=inputs, outputs_ownership=outputs)
        else:
            tid = session_client().create_task(function_id, args, executor=executor,
                                               inputs_ownership=inputs,
                                               outputs_ownership=outputs)
        emit({"task_id": tid, "require_signed": require_signed}, json_out, tid)
    run(go)


@app.command("assign")
def assign(task_id: str,
           input: Annotated[list[str] | None, typer.Option(help="name=data_id")] = None,
           output: Annotated[list[str] | None, typer.Option(help="name=data_id")] = None,
           json_out: Json = False) -> None:
    """Assign your data to a task."""
    def go() -> None:
        inputs = parse_pairs(input, "--input", "name=data_id")
        outputs = parse_pairs(output, "--output", "name=data_id")
        client = session_client()
        client.assign_data(task_id, inputs=inputs, outputs=outputs)
        task = client.get_task(task_id)
        names = sorted([*inputs, *outputs])
        emit({"task_id": task_id, "assigned": names, "status": task.status_name}, json_out,
             f"assigned {', '.join(names) or 'nothing'} to {task_id} ({task.status_name})")
    run(go)


def _approval_line(task: Task) -> str:
    waiting = sorted(set(task.participants) - set(task.approved_users))
    if task.status_name == "Approved" or not waiting:
        return "everyone approved"
    return f"waiting for {', '.join(waiting)}"


@app.command("approve")
def approve(task_id: str, json_out: Json = False) -> None:
    """Approve a task you participate in (review it first: `confide task review`)."""
    def go() -> None:
        client = session_client()
        before = client.get_task(task_id)
        already = client.user_id in before.approved_users
        if not already:
            client.approve_task(task_id)
        task = client.get_task(task_id) if not already else before
        emit({"task_id": task_id, "already_approved": already, "status": task.status_name,
              "approved_users": task.approved_users}, json_out,
             f"{'already approved' if already else 'approved'} {task_id} "
             f"({_approval_line(task)})")
    run(go)


@app.command("reject")
def reject(task_id: str,
           reason: Annotated[str, typer.Option(help="Why; the creator sees it.")] = "",
           json_out: Json = False) -> None:
    """Reject a task you participate in: it cannot run until you approve it after all."""
    def go() -> None:
        session_client().reject_task(task_id, reason)
        emit({"task_id": task_id, "rejected": True, "reason": reason}, json_out,
             f"rejected {task_id}")
    run(go)


@app.command("invoke")
def invoke(task_id: str, json_out: Json = False) -> None:
    """Start a task you created (everyone must have approved)."""
    def go() -> None:
        session_client().invoke_task(task_id)
        emit({"task_id": task_id, "invoked": True}, json_out, f"invoked {task_id}")
    run(go)


@app.command("cancel")
def cancel(task_id: str, json_out: Json = False) -> None:
    """Cancel a task you created."""
    def go() -> None:
        session_client().cancel_task(task_id)
        emit({"task_id": task_id, "canceled": True}, json_out, f"canceled {task_id}")
    run(go)


def _task_dict(task: Task, review: TaskReview | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "task_id": task.task_id, "status": task.status_name, "creator": task.creator,
        "function_id": task.function_id, "function_owner": task.function_owner,
        "arguments": task.function_arguments, "participants": task.participants,
        "approved_users": task.approved_users, "inputs_ownership": task.inputs_ownership,
        "outputs_ownership": task.outputs_ownership, "assigned_inputs": task.assigned_inputs,
        "assigned_outputs": task.assigned_outputs, "final": task.final,
        "ok": task.ok, "result": task.return_value.decode("utf-8", "replace"),
        "tags": {k: v.hex() for k, v in task.tags_map.items()}, "log": task.log,
        "reason": task.reason}
    if review is not None:
        data["rejections"] = {r.user_id: r.reason for r in review.rejections}
        if task.ok is False:
            data["log"] = review.log
            data["failure_detail"] = review.failure_detail
    return data


def _print_task(data: dict[str, Any]) -> None:
    lines = [("task", data["task_id"]), ("status", data["status"]),
             ("function", f"{data['function_id']} (owner {data['function_owner']})"),
             ("arguments", json.dumps(data["arguments"], sort_keys=True)),
             ("participants", ", ".join(data["participants"])),
             ("approved", ", ".join(data["approved_users"]) or "nobody yet")]
    lines += [("rejected", f"{u}: {why or '(no reason)'}")
              for u, why in sorted(data.get("rejections", {}).items())]
    if data["ok"] is True:
        lines.append(("result", data["result"]))
        lines += [(f"output {n}", tag) for n, tag in sorted(data["tags"].items())]
    elif data["ok"] is False:
        lines.append(("error", data["reason"]))
        if data.get("failure_detail"):
            lines.append(("detail", data["failure_detail"]))
    for key, value in lines:
        typer.echo(f"{key}: {value}")
    for line in data["log"]:
        typer.echo(f"log: {line}")


def _with_review(client: Client, task: Task) -> TaskReview | None:
    from ..client import ClientError

    try:
        return client.review_task(task.task_id)
    except ClientError:  # a Teaclave server, or not allowed: GetTask's view is enough
        return None


@app.command("get")
def get(task_id: str, json_out: Json = False) -> None:
    """Show a task (with a failed task's log and any rejections)."""
    def go() -> None:
        client = session_client()
        task = client.get_task(task_id)
        data = _task_dict(task, _with_review(client, task))
        emit(data, json_out, lambda: _print_task(data))
    run(go)


@app.command("wait")
def wait(task_id: str, timeout: float = 300.0, json_out: Json = False) -> None:
    """Wait for a task to end and show it; exit 5 unless it finished successfully."""
    def go() -> None:
        client = session_client()
        if json_out or not err.is_terminal:
            task = client.wait(task_id, timeout)
        else:
            with err.status(f"waiting for {task_id}"):
                task = client.wait(task_id, timeout)
        data = _task_dict(task, _with_review(client, task) if task.ok is False else None)
        emit(data, json_out, lambda: _print_task(data))
        if not (task.final and task.ok):
            raise typer.Exit(_exit.TASK_FAILED)
    run(go)


@app.command("list")
def list_tasks(limit: int = 20, json_out: Json = False) -> None:
    """Tasks you participate in, newest first."""
    def go() -> None:
        ids = session_client().list_tasks(limit)
        emit(ids, json_out, "\n".join(ids) if ids else None)
    run(go)


@app.command("pending")
def pending(limit: int = 50, json_out: Json = False) -> None:
    """Tasks that wait for your approval (review them with `confide task review`)."""
    from ..client import TaskStatus

    def go() -> None:
        tasks = session_client().pending_tasks(limit)
        rows = [{"task_id": p.task_id, "creator": p.creator, "function_id": p.function_id,
                 "function_name": p.function_name, "status": TaskStatus(p.status).label,
                 "unassigned": p.unassigned} for p in tasks]

        def text() -> None:
            for r in rows:
                state = (f"waiting for data: {', '.join(r['unassigned'])}" if r["unassigned"]
                         else "ready for your approval")
                typer.echo(f"{r['task_id']}\t{r['function_name']}\tby {r['creator']}\t{state}")

        emit(rows, json_out, text)
    run(go)


@app.command("review")
def review(task_id: str, json_out: Json = False,
           code_out: Annotated[Path | None, typer.Option(
               help="Write the function's code (when you may read it) to this file.")] = None,
           show_code: Annotated[bool, typer.Option(
               help="Print the code (when you may read it).")] = False) -> None:
    """Everything your approval covers: function (hash, owner, code), arguments, data, approvals."""
    from ._review_view import print_review, review_dict

    def go() -> None:
        r = session_client().review_task(task_id)
        data = review_dict(r)
        if code_out is not None:
            if r.function is None or not r.function.payload_visible:
                raise fail("the function's code is confidential: you may see its hash and "
                           "owner only", _exit.DENIED)
            code_out.write_bytes(r.function.payload)
        emit(data, json_out, lambda: print_review(r, data, show_code=show_code))
    run(go)
