"""``confide user …``: log in (attest, then remember the session) and manage users."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import Json, connect, emit, err, run, session_client
from ._input import read_secret_line
from ._session import Session, active_profile

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Users and sessions.")

PasswordStdin = Annotated[bool, typer.Option(
    "--password-stdin", help="Read the password from the first line of standard input.")]


def _password(password: str | None, stdin: bool, *, confirm: bool) -> str:
    """The password: from stdin, the option/environment, or a hidden prompt."""
    if stdin:
        return read_secret_line("--password-stdin")
    if password is not None:
        return password
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=confirm))


@app.command("login")
def login(
    user_id: str,
    password: Annotated[str | None, typer.Option(
        envvar="CONFIDE_PASSWORD", show_default=False,
        help="Prefer --password-stdin or the prompt: options show up in `ps`.")] = None,
    password_stdin: PasswordStdin = False,
    host: Annotated[list[str] | None, typer.Option(
        "--host", envvar="CONFIDE_HOST", show_default="localhost",
        help="HOST[:FRONTEND_PORT[:AUTH_PORT]] of the server; repeat it or give a comma list "
             "for several frontends (each is attested; commands fail over between them). A "
             "name with several addresses counts as several.")] = None,
    authentication_port: Annotated[int, typer.Option(
        envvar="CONFIDE_AUTHENTICATION_PORT", help="For --host entries without one.")] = 7776,
    frontend_port: Annotated[int, typer.Option(
        envvar="CONFIDE_FRONTEND_PORT", help="For --host entries without one.")] = 7777,
    data_dir: Annotated[Path, typer.Option(
        "--data-dir", "-d", envvar="CONFIDE_DATA_DIR",
        help="Trust files to attest the server with (enclave_info.toml, auditors/, "
             "as-root-ca.pem; confide serve writes them to its data dir).")
    ] = Path("confide-data"),
    server_cert: Annotated[Path | None, typer.Option(
        help="Pin this API certificate (PEM) instead of attesting.")] = None,
) -> None:
    """Attest the server, log in and remember the session in the active profile."""
    def go() -> None:
        from ..client._endpoints import parse_endpoints

        endpoints = parse_endpoints(host or ["localhost"], frontend_port=frontend_port,
                                    authentication_port=authentication_port)
        secret = _password(password, password_stdin, confirm=False)
        entries = [str(e) for e in endpoints]
        client = connect(entries, authentication_port, frontend_port, data_dir=data_dir,
                         server_cert=server_cert)
        token = client.login(user_id, secret)
        first = endpoints[0]
        Session(first.host, first.authentication_port, first.frontend_port,
                str(server_cert.resolve()) if server_cert is not None else "", user_id, token,
                data_dir="" if server_cert is not None else str(data_dir.resolve()),
                hosts=entries).save()
        how = "pinned certificate" if server_cert is not None else "attested server"
        many = f"; {len(entries)} endpoints" if len(entries) > 1 else ""
        typer.echo(f"logged in as {user_id} ({how}{many}; profile {active_profile()})")
    run(go)


@app.command("logout")
def logout() -> None:
    """Forget the active profile's token (the server stays remembered)."""
    forgot = Session.forget()
    typer.echo(f"logged out (profile {active_profile()})" if forgot else "not logged in")


@app.command("whoami")
def whoami(json_out: Json = False) -> None:
    """The active profile's user and server."""
    s = Session.load()
    data = {"profile": active_profile(), "user_id": s.user_id if s else "",
            "logged_in": bool(s and s.token),
            "server": s.server() if s else ""}
    emit(data, json_out, f"{data['user_id'] or '(nobody)'} on {data['server'] or '(no server)'}"
                         f" (profile {data['profile']})")


@app.command("register")
def register(user_id: str, role: Annotated[str, typer.Argument(
                 help="PlatformAdmin, FunctionOwner, DataOwnerManager or DataOwner")],
             attribute: str = "",
             password: Annotated[str | None, typer.Option(show_default=False)] = None,
             password_stdin: PasswordStdin = False) -> None:
    """Register a user (the new user's password: stdin, the option or a prompt)."""
    def go() -> None:
        secret = _password(password, password_stdin, confirm=True)
        session_client().register_user(user_id, secret, role, attribute)
        typer.echo(f"registered {user_id} ({role}{', ' + attribute if attribute else ''})")
    run(go)


@app.command("update")
def update(user_id: str, role: str, attribute: str = "",
           password: Annotated[str | None, typer.Option(show_default=False)] = None,
           password_stdin: PasswordStdin = False) -> None:
    """Change a user's role, attribute and password (administrators and managers)."""
    def go() -> None:
        secret = _password(password, password_stdin, confirm=True)
        session_client().update_user(user_id, secret, role, attribute)
        typer.echo(f"updated {user_id}")
    run(go)


@app.command("reset-password")
def reset_password(user_id: str, json_out: Json = False) -> None:
    """Give a user a new random password; prints it (it ends the user's sessions)."""
    def go() -> None:
        new = session_client().reset_user_password(user_id)
        emit({"user_id": user_id, "password": new}, json_out, new)
    run(go)


@app.command("delete")
def delete(user_id: str) -> None:
    """Delete a user."""
    def go() -> None:
        session_client().delete_user(user_id)
        typer.echo(f"deleted {user_id}")
    run(go)


@app.command("list")
def list_users(scope: Annotated[str, typer.Argument(help="Any id for admins; the attribute "
                                                         "for data-owner managers.")],
               json_out: Json = False) -> None:
    """List users."""
    def go() -> None:
        users = session_client().list_users(scope)
        emit(users, json_out, "\n".join(users) if users else None)
    run(go)


@app.command("passwd")
def passwd(password: Annotated[str | None, typer.Option(show_default=False)] = None,
           password_stdin: PasswordStdin = False) -> None:
    """Change your password (this ends every session of yours)."""
    def go() -> None:
        session_client().change_password(_password(password, password_stdin, confirm=True))
        Session.forget()
        err.print("password changed; log in again")
    run(go)
