"""``confide function …``: register, list and show functions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..executor_registry import function_types
from ._common import console, run, session_client

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Functions.")


@app.command("register")
def register(
    name: str,
    executor_type: Annotated[str, typer.Option(help=", ".join(function_types()))],
    payload: Annotated[Path | None, typer.Option(help="File with the function's code.")] = None,
    description: str = "",
    private: bool = False,
    argument: Annotated[list[str] | None, typer.Option(
        help="key (overwritable) or key=default (fixed). Repeatable.")] = None,
    input: Annotated[list[str] | None, typer.Option(help="Input name; name? if optional.")] = None,
    output: Annotated[list[str] | None, typer.Option(
        help="Output name; name? if optional.")] = None,
    allow: Annotated[list[str] | None, typer.Option(help="Allow-list entry (user id or "
                                                         "attribute). Repeatable.")] = None,
    usage_quota: int = -1,
) -> None:
    """Register a function; prints its id."""
    from ..client import FunctionArgument, FunctionFile

    args = [FunctionArgument(a.split("=", 1)[0], a.split("=", 1)[1], False) if "=" in a
            else FunctionArgument(a) for a in argument or []]

    def files(items: list[str] | None) -> list[FunctionFile]:
        return [FunctionFile(i.rstrip("?"), optional=i.endswith("?")) for i in items or []]

    run(lambda: console.print(session_client().register_function(
        name, executor_type=executor_type, description=description, public=not private,
        payload=payload.read_bytes() if payload else b"", arguments=args, inputs=files(input),
        outputs=files(output), user_allowlist=allow or [], usage_quota=usage_quota)))


@app.command("list")
def list_functions(user_id: Annotated[str | None, typer.Argument()] = None) -> None:
    """Functions registered by, and allowed to, a user (default: you)."""
    def go() -> None:
        registered, allowed = session_client().list_functions(user_id)
        console.print_json(json.dumps({"registered": registered, "allowed": allowed}))
    run(go)


@app.command("get")
def get(function_id: str) -> None:
    """Show a function."""
    def go() -> None:
        f = session_client().get_function(function_id)
        console.print_json(json.dumps({
            "name": f.name, "description": f.description, "executor_type": f.executor_type,
            "owner": f.owner, "public": f.public, "payload_bytes": len(f.payload),
            "arguments": [a.key for a in f.arguments], "inputs": [i.name for i in f.inputs],
            "outputs": [o.name for o in f.outputs], "user_allowlist": list(f.user_allowlist)}))
    run(go)
