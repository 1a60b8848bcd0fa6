"""``confide function …``: register, inspect, manage and test functions."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any

import typer

from ..executor_registry import function_types
from ._common import Json, emit, run, session_client
from ._function_test import test as test_command
from ._function_test import translate as translate_command
from ._input import UsageError

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Functions.")
app.command("test")(test_command)
app.command("translate")(translate_command)

CodeReview = Annotated[str, typer.Option(
    help="open: participants of a task using the function may read its code before approving;"
         " confidential: they see only its SHA-256 and owner.")]


def _files(items: list[str] | None) -> list[Any]:
    from ..client import FunctionFile

    return [FunctionFile(i.rstrip("?"), optional=i.endswith("?")) for i in items or []]


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
    usage_quota: Annotated[int, typer.Option(help="Invocations allowed; -1: unlimited.")] = -1,
    code_review: CodeReview = "open",
    json_out: Json = False,
) -> None:
    """Register a function; prints its id."""
    from ..client import FunctionArgument

    def go() -> None:
        if code_review not in ("open", "confidential"):
            raise UsageError(f"--code-review must be open or confidential, not {code_review!r}")
        args = [FunctionArgument(a.split("=", 1)[0], a.split("=", 1)[1], False) if "=" in a
                else FunctionArgument(a) for a in argument or []]
        fid = session_client().register_function(
            name, executor_type=executor_type, description=description, public=not private,
            payload=payload.read_bytes() if payload else b"", arguments=args,
            inputs=_files(input), outputs=_files(output), user_allowlist=allow or [],
            usage_quota=usage_quota, code_review=code_review)
        emit({"function_id": fid}, json_out, fid)
    run(go)


@app.command("list")
def list_functions(user_id: Annotated[str | None, typer.Argument()] = None,
                   json_out: Json = False) -> None:
    """Functions registered by, and allowed to, a user (default: you)."""
    def go() -> None:
        registered, allowed = session_client().list_functions(user_id)

        def text() -> None:
            for fid in registered:
                typer.echo(f"{fid}\tregistered")
            for fid in allowed:
                typer.echo(f"{fid}\tallowed")

        emit({"registered": registered, "allowed": allowed}, json_out, text)
    run(go)


@app.command("get")
def get(function_id: str, json_out: Json = False,
        payload_out: Annotated[Path | None, typer.Option(
            help="Write the payload (when you may read it) to this file.")] = None) -> None:
    """Show a function (Teaclave's GetFunction: private payloads only to their owner)."""
    def go() -> None:
        f = session_client().get_function(function_id)
        data = {
            "function_id": function_id, "name": f.name, "description": f.description,
            "executor_type": f.executor_type, "owner": f.owner, "public": f.public,
            "payload_bytes": len(f.payload),
            "payload_sha256": hashlib.sha256(f.payload).hexdigest() if f.payload else "",
            "arguments": [{"key": a.key, "default": a.default_value,
                           "overwritable": a.allow_overwrite} for a in f.arguments],
            "inputs": [{"name": i.name, "optional": i.optional} for i in f.inputs],
            "outputs": [{"name": o.name, "optional": o.optional} for o in f.outputs],
            "user_allowlist": list(f.user_allowlist)}
        if payload_out is not None:
            payload_out.write_bytes(f.payload)

        def text() -> None:
            for key in ("name", "description", "executor_type", "owner", "public",
                        "payload_bytes", "payload_sha256"):
                typer.echo(f"{key}: {data[key]}")
            typer.echo("arguments: " + ", ".join(
                a.key if a.allow_overwrite else f"{a.key}={a.default_value} (fixed)"
                for a in f.arguments))
            typer.echo("inputs: " + ", ".join(i.name + ("?" if i.optional else "")
                                              for i in f.inputs))
            typer.echo("outputs: " + ", ".join(o.name + ("?" if o.optional else "")
                                               for o in f.outputs))
            typer.echo("allow: " + ", ".join(f.user_allowlist))

        emit(data, json_out, text)
    run(go)


@app.command("stats")
def stats(function_id: str, json_out: Json = False) -> None:
    """A function's usage quota (-1: unlimited) and how often it was invoked."""
    def go() -> None:
        quota, usage = session_client().get_function_usage_stats(function_id)
        emit({"function_quota": quota, "current_usage": usage}, json_out,
             f"quota {quota if quota >= 0 else 'unlimited'}, used {usage}")
    run(go)


@app.command("set-review")
def set_review(function_id: str, mode: Annotated[str, typer.Argument(
        help="open or confidential")]) -> None:
    """Decide whether participants of tasks using your function may read its code."""
    def go() -> None:
        if mode not in ("open", "confidential"):
            raise UsageError(f"MODE must be open or confidential, not {mode!r}")
        session_client().set_code_review(function_id, mode)
        typer.echo(f"code review of {function_id}: {mode}")
    run(go)


@app.command("disable")
def disable(function_id: str) -> None:
    """Disable a function: no new tasks, no invocations (owner or administrator)."""
    def go() -> None:
        session_client().disable_function(function_id)
        typer.echo(f"disabled {function_id}")
    run(go)


@app.command("delete")
def delete(function_id: str) -> None:
    """Delete a function you own."""
    def go() -> None:
        session_client().delete_function(function_id)
        typer.echo(f"deleted {function_id}")
    run(go)
