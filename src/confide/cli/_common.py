"""What the client commands share: consoles, the data-dir option, the session's client.

The SDK (and through it grpc and the attestation verifiers) is imported when a
client command runs, so that ``confide --help``, ``encrypt`` or ``decrypt`` start
without it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from ._session import Session

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["DataDir", "connect", "console", "err", "run", "session_client"]

console = Console()
err = Console(stderr=True)
DataDir = Annotated[Path, typer.Option("--data-dir", "-d", envvar="CONFIDE_DATA_DIR",
                                       help="Where the server keeps its state.")]


def connect(host: str, authentication_port: int, frontend_port: int, *,
            data_dir: Path | None, server_cert: Path | None) -> Client:
    """Attest with the trust files in ``data_dir``, or pin ``server_cert`` when given."""
    from ..client import Client, ClientError

    if server_cert is not None:
        return Client.connect(host, server_cert=server_cert,
                              authentication_port=authentication_port,
                              frontend_port=frontend_port)
    if data_dir is None:
        raise ClientError("INVALID_ARGUMENT", "give --data-dir (attest) or --server-cert (pin)")
    return Client.connect_data_dir(data_dir, host, authentication_port=authentication_port,
                                   frontend_port=frontend_port)


def session_client() -> Client:
    """A client for the saved session (``confide user login``), or exit 2 without one."""
    from ..client import ClientError

    session = Session.load()
    if session is None or not session.token:
        err.print("not logged in: run `confide user login`")
        raise typer.Exit(2)
    try:
        client = connect(session.host, session.authentication_port, session.frontend_port,
                         data_dir=Path(session.data_dir) if session.data_dir else None,
                         server_cert=Path(session.server_cert) if session.server_cert else None)
    except ClientError as e:
        err.print(f"[red]{e.code}[/] {e.message}")
        raise typer.Exit(1) from e
    client.use_token(session.user_id, session.token)
    return client


def run(fn: Callable[[], object]) -> None:
    """Call ``fn`` and turn a ClientError into a clean exit (status 1, code and message)."""
    from ..client import ClientError

    try:
        fn()
    except ClientError as e:
        err.print(f"[red]{e.code}[/] {e.message}")
        raise typer.Exit(1) from e
