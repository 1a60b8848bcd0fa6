"""The root ``confide`` app: every command group, mounted in one place.

One module per command group or single command; this file only mounts them.
To add a command, write its module beside this one and mount it below.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

# The click that typer vendors (typer pins it): its usage errors, shown here with
# exit status 1 (``_exit``) instead of click's 2.
from typer._click.exceptions import ClickException

from . import (
    _attest,
    _attestation_service,
    _audit,
    _backup,
    _config,
    _console,
    _crypto,
    _db,
    _demo,
    _enclave_info,
    _exit,
    _files,
    _functions,
    _keys,
    _measure,
    _nodes,
    _probe,
    _profiles,
    _serve,
    _signing,
    _tasks,
    _users,
    _worker,
)
from ._session import DEFAULT_PROFILE, set_profile

__all__ = ["app", "main"]

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="confide: confidential multi-party computing, Teaclave-compatible. "
                       "Exit status: 0 ok, 1 usage, 2 not found or not allowed, 3 server or "
                       "attestation failure, 4 refused in the task's state, 5 task failed.")


@app.callback()
def _root(profile: Annotated[str, typer.Option(
        "--profile", "-p", envvar="CONFIDE_PROFILE",
        help="Profile to use: a user and server of its own (under $CONFIDE_HOME).")
        ] = DEFAULT_PROFILE) -> None:
    try:
        set_profile(profile)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--profile") from e

# The platform: run it, or try it.
app.command("serve")(_serve.serve)
app.command("worker")(_worker.worker)
app.add_typer(_nodes.app, name="node")
app.command("demo")(_demo.demo)
app.command("attestation-service")(_attestation_service.attestation_service)
app.add_typer(_config.app, name="config")
app.add_typer(_db.app, name="db")
app.add_typer(_keys.app, name="keys")
app.command("backup")(_backup.backup)
app.command("restore")(_backup.restore)
app.command("probe")(_probe.probe)

# Client commands, through the SDK (attest the server, then call it).
app.add_typer(_users.app, name="user")
app.add_typer(_functions.app, name="function")
app.add_typer(_files.app, name="file")
app.add_typer(_tasks.app, name="task")
app.add_typer(_audit.app, name="audit")
app.add_typer(_profiles.app, name="profile")
app.add_typer(_signing.app, name="key")  # also task policy|sign|revoke|receipt, function
app.command("console")(_console.console)
app.command("attest")(_attest.attest)

# Local tools: data files (teaclave_cli's options), the auditors' measure and enclave_info.
app.command("encrypt")(_crypto.encrypt)
app.command("decrypt")(_crypto.decrypt)
app.add_typer(_enclave_info.app, name="enclave-info")
app.command("measure")(_measure.measure)


def main() -> None:
    """The ``confide`` entry point (``pyproject.toml``, ``python -m confide``)."""
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    try:
        status = app(standalone_mode=False)
    except ClickException as e:
        from typer import rich_utils

        rich_utils.rich_format_error(e)
        sys.exit(_exit.USAGE)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    sys.exit(status if isinstance(status, int) else _exit.OK)
