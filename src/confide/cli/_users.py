"""``confide user …``: log in (attest, then remember the session) and manage users."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import connect, console, run, session_client
from ._session import Session

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Users and sessions.")


@app.command("login")
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
        client = connect(host, authentication_port, frontend_port, data_dir=data_dir,
                         server_cert=server_cert)
        token = client.login(user_id, password)
        Session(host, authentication_port, frontend_port,
                str(server_cert.resolve()) if server_cert is not None else "", user_id, token,
                data_dir="" if server_cert is not None else str(data_dir.resolve())).save()
        how = "pinned certificate" if server_cert is not None else "attested server"
        console.print(f"logged in as {user_id} ({how})")
    run(go)


@app.command("register")
def register(user_id: str, role: str, attribute: str = "",
             password: Annotated[str, typer.Option(prompt=True, hide_input=True,
                                                   confirmation_prompt=True)] = "") -> None:
    """Register a user (roles: PlatformAdmin, FunctionOwner, DataOwnerManager, DataOwner)."""
    run(lambda: session_client().register_user(user_id, password, role, attribute))


@app.command("list")
def list_users(scope: Annotated[str, typer.Argument(help="Any id for admins; the attribute "
                                                         "for data-owner managers.")]) -> None:
    """List users."""
    def go() -> None:
        for user in session_client().list_users(scope):
            console.print(user)
    run(go)


@app.command("passwd")
def passwd(password: Annotated[str, typer.Option(prompt=True, hide_input=True,
                                                 confirmation_prompt=True)]) -> None:
    """Change your password (this ends every session of yours)."""
    run(lambda: session_client().change_password(password))
