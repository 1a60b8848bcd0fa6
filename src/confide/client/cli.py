"""The ``confide`` command line: serve, demo, and user/function/file/task commands."""

from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from . import cli_attest
from ._errors import ClientError
from ._sdk import Client, FunctionArgument, FunctionFile
from ._session import Session

__all__ = ["app", "main"]

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="confide: confidential multi-party computing, Teaclave-compatible.")
user_app = typer.Typer(no_args_is_help=True, help="Users and sessions.")
function_app = typer.Typer(no_args_is_help=True, help="Functions.")
file_app = typer.Typer(no_args_is_help=True, help="Data files.")
task_app = typer.Typer(no_args_is_help=True, help="Tasks.")
audit_app = typer.Typer(no_args_is_help=True, help="The audit log.")
app.add_typer(user_app, name="user")
app.add_typer(function_app, name="function")
app.add_typer(file_app, name="file")
app.add_typer(task_app, name="task")
app.add_typer(audit_app, name="audit")
cli_attest.register(app)

console = Console()
err = Console(stderr=True)
DataDir = Annotated[Path, typer.Option("--data-dir", "-d", envvar="CONFIDE_DATA_DIR",
                                       help="Where the server keeps its state.")]


# -- server ------------------------------------------------------------------
@app.command()
def serve(
    data_dir: DataDir = Path("confide-data"),
    host: Annotated[str, typer.Option(help="Address the client APIs listen on.")] = "127.0.0.1",
    authentication_port: int = 7776,
    frontend_port: int = 7777,
    scheduler_port: int = 17780,
    key_service_port: Annotated[int, typer.Option(
        help="Key service (worker enrolment), loopback.")] = 17781,
    blob_port: Annotated[int, typer.Option(help="Blob store port (0: any free port).")] = 7778,
    workers: Annotated[int, typer.Option(help="Execution worker processes.")] = 2,
    worker_slots: Annotated[int, typer.Option(help="Tasks each worker runs at once.")] = 4,
    python_prestart: Annotated[int | None, typer.Option(
        help="Python sandboxes each worker keeps started ahead of its tasks (each still runs "
             "one task). Default: one per slot, at most 4; 0: start one per task.")] = None,
    database_url: Annotated[str | None, typer.Option(
        envvar="CONFIDE_DATABASE_URL",
        help="SQLAlchemy URL; default SQLite in the data dir.")] = None,
    admin_password: Annotated[str | None, typer.Option(
        envvar="CONFIDE_ADMIN_PASSWORD", help="Password of 'admin' when it is created.")] = None,
    executor_timeout: float = 30.0,
    tee: str = "sim",
    allow_loopback_port: Annotated[list[int] | None, typer.Option(
        help="Let workers fetch/store task files on 127.0.0.1/::1 at this port too (besides "
             "the blob store's). Repeatable. Off by default: every opened port is reachable "
             "by any task's URLs.")] = None,
    file_root: Annotated[list[Path] | None, typer.Option(
        help="Let task files use file:// URLs inside this directory. Repeatable. Off by "
             "default.")] = None,
    metrics_address: Annotated[str | None, typer.Option(
        help="Serve Prometheus metrics at HOST:PORT/metrics (e.g. 127.0.0.1:9464). Off by "
             "default.")] = None,
    log_format: Annotated[str, typer.Option(help="human or json (one line per event).")
                          ] = "human",
    server_name: Annotated[list[str] | None, typer.Option(
        help="DNS name clients reach the APIs by (the API certificate names it). Repeatable; "
             "default: localhost.")] = None,
) -> None:
    """Run the all-in-one server (every service, the database, the worker pool)."""
    from ..server import ConfigError, Platform, ServerConfig
    from ..telemetry import LOG_FORMATS, configure_logging

    if log_format not in LOG_FORMATS:
        err.print(f"[red]cannot start:[/] --log-format must be human or json, not {log_format!r}")
        raise typer.Exit(2)
    configure_logging("json" if log_format == "json" else "human", "INFO", process="server")
    human = log_format == "human"  # json: standard error carries JSON lines only
    if tee == "sim" and human:
        err.print("[bold yellow]sim TEE: NO protection against the operator. Development only.[/]")
    try:
        platform = Platform(ServerConfig(
            data_dir=data_dir, host=host, authentication_port=authentication_port,
            frontend_port=frontend_port, scheduler_port=scheduler_port,
            key_service_port=key_service_port, blob_port=blob_port,
            workers=workers, worker_slots=worker_slots, worker_python_prestart=python_prestart,
            database_url=database_url, admin_password=admin_password, tee=tee,
            executor_timeout_s=executor_timeout,
            file_agent_loopback_ports=tuple(allow_loopback_port or ()),
            file_roots=tuple(str(p.resolve()) for p in file_root or ()),
            metrics_address=metrics_address, log_format=log_format,
            server_names=tuple(server_name or ("localhost",))))
        platform.start()
    except ConfigError as e:
        if human:
            err.print(f"[red]cannot start:[/] {e}")
        else:
            logging.getLogger("confide.server").error("cannot start: %s", e)
        raise typer.Exit(2) from e
    signal.signal(signal.SIGTERM, lambda *_: platform.stop())
    signal.signal(signal.SIGINT, lambda *_: platform.stop())
    if human:
        err.print(f"serving; clients attest with the trust files in {data_dir} "
                  f"(confide user login -d {data_dir}) or pin {data_dir / 'api-cert.pem'}")
    platform.wait()


@app.command()
def demo() -> None:
    """Start a throw-away server and walk a multi-party task through its life."""
    from ._demo import run_demo

    raise typer.Exit(run_demo(console))


@audit_app.command("verify")
def audit_verify(data_dir: DataDir = Path("confide-data"),
                 database_url: Annotated[str | None, typer.Option(
                     envvar="CONFIDE_DATABASE_URL")] = None) -> None:
    """Check the audit log's hash chain (run where the platform secret is)."""
    from ..crypto.records import RecordSealer
    from ..server import ConfigError, open_root_secret
    from ..services.audit import AuditChainBroken, AuditLog
    from ..storage import Database

    try:
        secret = open_root_secret(data_dir, create=False)
    except ConfigError as e:
        err.print(f"[red]{e}[/]")
        raise typer.Exit(2) from e
    db = Database(database_url or f"sqlite:///{data_dir / 'confide.db'}",
                  RecordSealer(secret.derive("record-seal", 32)))
    try:
        count = AuditLog(db, secret.derive("audit-chain", 32), clock=lambda: 0.0).verify_chain()
    except AuditChainBroken as e:
        err.print(f"[red]audit log does NOT verify:[/] {e}")
        raise typer.Exit(1) from e
    console.print(f"[green]audit log verifies:[/] {count} entries")


# -- client plumbing -----------------------------------------------------------
def _connect(host: str, authentication_port: int, frontend_port: int, *,
             data_dir: Path | None, server_cert: Path | None) -> Client:
    """Attest with the trust files in ``data_dir``, or pin ``server_cert`` when given."""
    if server_cert is not None:
        return Client.connect(host, server_cert=server_cert,
                              authentication_port=authentication_port,
                              frontend_port=frontend_port)
    if data_dir is None:
        raise ClientError("INVALID_ARGUMENT", "give --data-dir (attest) or --server-cert (pin)")
    return Client.connect_data_dir(data_dir, host, authentication_port=authentication_port,
                                   frontend_port=frontend_port)


def _client() -> Client:
    session = Session.load()
    if session is None or not session.token:
        err.print("not logged in: run `confide user login`")
        raise typer.Exit(2)
    try:
        client = _connect(session.host, session.authentication_port, session.frontend_port,
                          data_dir=Path(session.data_dir) if session.data_dir else None,
                          server_cert=Path(session.server_cert) if session.server_cert else None)
    except ClientError as e:
        err.print(f"[red]{e.code}[/] {e.message}")
        raise typer.Exit(1) from e
    client.use_token(session.user_id, session.token)
    return client


def _run(fn: object) -> None:
    """Call ``fn`` and turn a ClientError into a clean exit."""
    try:
        fn()  # type: ignore[operator]
    except ClientError as e:
        err.print(f"[red]{e.code}[/] {e.message}")
        raise typer.Exit(1) from e


@user_app.command("login")
def login(
    user_id: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True,
                                          envvar="CONFIDE_PASSWORD")],
    host: str = "localhost",
    authentication_port: int = 7776,
    frontend_port: int = 7777,
    data_dir: Annotated[Path, typer.Option(
        "--data-dir", "-d", envvar="CONFIDE_DATA_DIR",
        help="Trust files to attest the server with (enclave_info.toml, auditors/, "
             "as-root-ca.pem; confide serve writes them to its data dir).")
    ] = Path("confide-data"),
    server_cert: Annotated[Path | None, typer.Option(
        help="Pin this API certificate (PEM) instead of attesting.")] = None,
) -> None:
    """Attest the server, log in and remember the session."""
    def go() -> None:
        client = _connect(host, authentication_port, frontend_port, data_dir=data_dir,
                          server_cert=server_cert)
        token = client.login(user_id, password)
        Session(host, authentication_port, frontend_port,
                str(server_cert.resolve()) if server_cert is not None else "", user_id, token,
                data_dir="" if server_cert is not None else str(data_dir.resolve())).save()
        how = "pinned certificate" if server_cert is not None else "attested server"
        console.print(f"logged in as {user_id} ({how})")
    _run(go)


@user_app.command("register")
def user_register(user_id: str, role: str, attribute: str = "",
                  password: Annotated[str, typer.Option(prompt=True, hide_input=True,
                                                        confirmation_prompt=True)] = "") -> None:
    """Register a user (roles: PlatformAdmin, FunctionOwner, DataOwnerManager, DataOwner)."""
    _run(lambda: _client().register_user(user_id, password, role, attribute))


@user_app.command("list")
def user_list(scope: Annotated[str, typer.Argument(help="Any id for admins; the attribute "
                                                        "for data-owner managers.")]) -> None:
    """List users."""
    def go() -> None:
        for user in _client().list_users(scope):
            console.print(user)
    _run(go)


@user_app.command("passwd")
def user_passwd(password: Annotated[str, typer.Option(prompt=True, hide_input=True,
                                                      confirmation_prompt=True)]) -> None:
    """Change your password (this ends every session of yours)."""
    _run(lambda: _client().change_password(password))


# -- functions -----------------------------------------------------------------
@function_app.command("register")
def function_register(
    name: str,
    executor_type: Annotated[str, typer.Option(help="builtin, python or wamr")],
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
    args = [FunctionArgument(a.split("=", 1)[0], a.split("=", 1)[1], False) if "=" in a
            else FunctionArgument(a) for a in argument or []]

    def files(items: list[str] | None) -> list[FunctionFile]:
        return [FunctionFile(i.rstrip("?"), optional=i.endswith("?")) for i in items or []]

    _run(lambda: console.print(_client().register_function(
        name, executor_type=executor_type, description=description, public=not private,
        payload=payload.read_bytes() if payload else b"", arguments=args, inputs=files(input),
        outputs=files(output), user_allowlist=allow or [], usage_quota=usage_quota)))


@function_app.command("list")
def function_list(user_id: Annotated[str | None, typer.Argument()] = None) -> None:
    """Functions registered by, and allowed to, a user (default: you)."""
    def go() -> None:
        registered, allowed = _client().list_functions(user_id)
        console.print_json(json.dumps({"registered": registered, "allowed": allowed}))
    _run(go)


@function_app.command("get")
def function_get(function_id: str) -> None:
    """Show a function."""
    def go() -> None:
        f = _client().get_function(function_id)
        console.print_json(json.dumps({
            "name": f.name, "description": f.description, "executor_type": f.executor_type,
            "owner": f.owner, "public": f.public, "payload_bytes": len(f.payload),
            "arguments": [a.key for a in f.arguments], "inputs": [i.name for i in f.inputs],
            "outputs": [o.name for o in f.outputs], "user_allowlist": list(f.user_allowlist)}))
    _run(go)


# -- files ---------------------------------------------------------------------
@file_app.command("register-input")
def file_register_input(url: str, schema: str, key: str, cmac: str, iv: str = "") -> None:
    """Register an encrypted input (key, iv, cmac in hex); prints its id."""
    _run(lambda: console.print(_client().register_input_file(
        url, schema=schema, key=bytes.fromhex(key), iv=bytes.fromhex(iv),
        cmac=bytes.fromhex(cmac))))


@file_app.command("register-output")
def file_register_output(url: str, schema: str, key: str, iv: str = "") -> None:
    """Register an output location and its key (hex); prints its id."""
    _run(lambda: console.print(_client().register_output_file(
        url, schema=schema, key=bytes.fromhex(key), iv=bytes.fromhex(iv))))


# -- tasks ---------------------------------------------------------------------
def _ownership(items: list[str] | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items or []:
        name, _, uids = item.partition("=")
        out[name] = [u for u in uids.split(",") if u]
    return out


@task_app.command("create")
def task_create(
    function_id: str,
    executor: Annotated[str, typer.Option(help="builtin, mesapy or wamr")],
    arguments: Annotated[str, typer.Option(help="JSON object")] = "{}",
    input_owner: Annotated[list[str] | None, typer.Option(help="name=uid1,uid2")] = None,
    output_owner: Annotated[list[str] | None, typer.Option(help="name=uid1,uid2")] = None,
) -> None:
    """Create a task; prints its id."""
    _run(lambda: console.print(_client().create_task(
        function_id, json.loads(arguments), executor=executor,
        inputs_ownership=_ownership(input_owner), outputs_ownership=_ownership(output_owner))))


@task_app.command("assign")
def task_assign(task_id: str,
                input: Annotated[list[str] | None, typer.Option(help="name=data_id")] = None,
                output: Annotated[list[str] | None, typer.Option(help="name=data_id")] = None
                ) -> None:
    """Assign your data to a task."""
    def pairs(items: list[str] | None) -> dict[str, str]:
        return dict(i.split("=", 1) for i in items or [])
    _run(lambda: _client().assign_data(task_id, inputs=pairs(input), outputs=pairs(output)))


@task_app.command("approve")
def task_approve(task_id: str) -> None:
    """Approve a task you participate in."""
    _run(lambda: _client().approve_task(task_id))


@task_app.command("invoke")
def task_invoke(task_id: str) -> None:
    """Start a task you created (everyone must have approved)."""
    _run(lambda: _client().invoke_task(task_id))


@task_app.command("cancel")
def task_cancel(task_id: str) -> None:
    """Cancel a task you created."""
    _run(lambda: _client().cancel_task(task_id))


@task_app.command("get")
def task_get(task_id: str) -> None:
    """Show a task."""
    _run(lambda: _print_task(_client().get_task(task_id)))


@task_app.command("wait")
def task_wait(task_id: str, timeout: float = 300.0) -> None:
    """Wait for a task to end and show it."""
    def go() -> None:
        with console.status(f"waiting for {task_id}"):
            task = _client().wait(task_id, timeout)
        _print_task(task)
        if not task.final:
            raise typer.Exit(3)
    _run(go)


@task_app.command("list")
def task_list(limit: int = 20) -> None:
    """Tasks you participate in, newest first."""
    def go() -> None:
        for task_id in _client().list_tasks(limit):
            console.print(task_id)
    _run(go)


def _print_task(task: object) -> None:
    from ._sdk import Task

    assert isinstance(task, Task)
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


@audit_app.command("query")
def audit_query(query: str, limit: int = 50) -> None:
    """Search the audit log (PlatformAdmin)."""
    def go() -> None:
        table = Table("time (µs)", "user", "message", "ok")
        for e in _client().query_audit_logs(query, limit):
            table.add_row(str(e.microsecond), e.user, e.message, "yes" if e.result else "no")
        console.print(table)
    _run(go)


def main() -> None:
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    app()
