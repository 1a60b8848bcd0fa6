"""What the client commands share: output (text or ``--json``), errors and exit
statuses, the data-dir option, and the active profile's client.

The SDK (and through it grpc and the attestation verifiers) is imported when a
client command runs, so that ``confide --help``, ``encrypt`` or ``decrypt`` start
without it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from . import _exit
from ._input import UsageError
from ._session import Session, active_profile

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["DataDir", "Json", "connect", "console", "emit", "err", "fail", "run",
           "session_client"]

T = TypeVar("T")
console = Console()
err = Console(stderr=True)
DataDir = Annotated[Path, typer.Option("--data-dir", "-d", envvar="CONFIDE_DATA_DIR",
                                       help="Where the server keeps its state.")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON (stable keys) instead of text.")]


def emit(data: Any, as_json: bool, text: Callable[[], None] | str | None = None) -> None:
    """Print ``data`` as JSON, or ``text`` (a line, or a function that prints)."""
    if as_json:
        typer.echo(json.dumps(data, sort_keys=True, indent=2))
    elif callable(text):
        text()
    elif text is not None:
        typer.echo(text)


def fail(message: str, code: int) -> typer.Exit:
    """Print ``message`` on stderr; the Exit to raise with ``code``."""
    err.print(message, markup=False, highlight=False)
    return typer.Exit(code)


def connect(hosts: Sequence[str], authentication_port: int, frontend_port: int, *,
            data_dir: Path | None, server_cert: Path | None) -> Client:
    """Attest with the trust files in ``data_dir``, or pin ``server_cert`` when given.

    ``hosts``: ``HOST[:FRONTEND_PORT[:AUTH_PORT]]`` entries (or comma lists); with
    several (or a name with several addresses) each is attested and calls fail over.
    """
    from ..client import Client

    if server_cert is not None:
        return Client.connect(hosts=hosts, server_cert=server_cert,
                              authentication_port=authentication_port,
                              frontend_port=frontend_port)
    if data_dir is None:
        raise UsageError("give --data-dir (attest) or --server-cert (pin)")
    return Client.connect_data_dir(data_dir, hosts=hosts,
                                   authentication_port=authentication_port,
                                   frontend_port=frontend_port)


def session_client() -> Client:
    """A client for the active profile's session (``confide user login``)."""
    session = Session.load()
    if session is None or not session.token:
        profile = active_profile()
        raise fail(f"not logged in (profile {profile}): run `confide --profile {profile} "
                   "user login USER -d DATA_DIR`", _exit.DENIED)
    client = connect(session.endpoint_entries(), session.authentication_port,
                     session.frontend_port,
                     data_dir=Path(session.data_dir) if session.data_dir else None,
                     server_cert=Path(session.server_cert) if session.server_cert else None)
    client.use_token(session.user_id, session.token)
    return client


def run(fn: Callable[[], T]) -> T:
    """Call ``fn``; turn every expected failure into a message and an exit status.

    ``ClientError`` (with the server's detail), attestation failures, usage
    errors and unreadable files each exit with their status (``_exit``); no
    traceback reaches the user.
    """
    from ..client import ClientError, ServerAttestationError

    try:
        return fn()
    except UsageError as e:
        raise fail(f"error: {e}", _exit.USAGE) from e
    except ServerAttestationError as e:
        raise fail(f"the server did not attest: {e}", _exit.SERVER) from e
    except ClientError as e:
        raise fail(e.describe(), _exit.exit_code(e)) from e
    except FileNotFoundError as e:
        raise fail(f"error: {e.filename}: no such file", _exit.USAGE) from e
    except IsADirectoryError as e:
        raise fail(f"error: {e.filename}: is a directory", _exit.USAGE) from e
    except PermissionError as e:
        raise fail(f"error: {e.filename}: permission denied", _exit.USAGE) from e
