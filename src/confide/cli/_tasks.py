"""``confide task …``: create, assign, approve, invoke, cancel, show, wait for and list tasks."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ..executor_registry import executor_names
from ._common import console, run, session_client

if TYPE_CHECKING:
    from ..client import Task

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Tasks.")


def _ownership(items: list[str] | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items or []:
        name, _, uids = item.partition("=")
        out[name] = [u for u in uids.split(",") if u]
    return out


@app.command("create")
def create(
    function_id: str,
    executor: Annotated[str, typer.Option(help=", ".join(executor_names()))],
    arguments: Annotated[str, typer.Option(help="JSON object")] = "{}",
    input_owner: Annotated[list[str] | None, typer.Option(help="name=uid1,uid2")] = None,
    output_owner: Annotated[list[str] | None, typer.Option(help="name=uid1,uid2")] = None,
) -> None:
    """Create a task; prints its id."""
    run(lambda: console.print(session_client().create_task(
        function_id, json.loads(arguments), executor=executor,
        inputs_ownership=_ownership(input_owner), outputs_ownership=_ownership(output_owner))))


@app.command("assign")
def assign(task_id: str,
           input: Annotated[list[str] | None, typer.Option(help="name=data_id")] = None,
           output: Annotated[list[str] | None, typer.Option(help="name=data_id")] = None
           ) -> None:
    """Assign your data to a task."""
    def pairs(items: list[str] | None) -> dict[str, str]:
        return dict(i.split("=", 1) for i in items or [])
    run(lambda: session_client().assign_data(task_id, inputs=pairs(input), outputs=pairs(output)))


@app.command("approve")
def approve(task_id: str) -> None:
    """Approve a task you participate in."""
    run(lambda: session_client().approve_task(task_id))


@app.command("invoke")
def invoke(task_id: str) -> None:
    """Start a task you created (everyone must have approved)."""
    run(lambda: session_client().invoke_task(task_id))


@app.command("cancel")
def cancel(task_id: str) -> None:
    """Cancel a task you created."""
    run(lambda: session_client().cancel_task(task_id))


@app.command("get")
def get(task_id: str) -> None:
    """Show a task."""
    run(lambda: _print_task(session_client().get_task(task_id)))


@app.command("wait")
def wait(task_id: str, timeout: float = 300.0) -> None:
    """Wait for a task to end and show it."""
    def go() -> None:
        with console.status(f"waiting for {task_id}"):
            task = session_client().wait(task_id, timeout)
        _print_task(task)
        if not task.final:
            raise typer.Exit(3)
    run(go)


@app.command("list")
def list_tasks(limit: int = 20) -> None:
    """Tasks you participate in, newest first."""
    def go() -> None:
        for task_id in session_client().list_tasks(limit):
            console.print(task_id)
    run(go)


def _print_task(task: Task) -> None:
    table = Table(show_header=False)
    table.add_row("task", task.task_id)
    table.add_row("status", task.status_name)
    table.add_row("function", f"{task.function_id} (owner {task.function_owner})")
    table.add_row("arguments", json.dumps(task.function_arguments))
    table.add_row("participants", ", ".join(task.participants))
    table.add_row("approved", ", ".join(task.approved_users))
    if task.ok is True:
        table.add_row("result", task.return_value.decode("utf-8", "replace"))
        for name, tag in task.tags_map.items():
            table.add_row(f"output {name}", tag.hex())
    elif task.ok is False:
        table.add_row("error", task.reason)
    console.print(table)
