"""The root ``confide`` app: every command group, mounted in one place.

One module per command group or single command; this file only mounts them.
To add a command, write its module beside this one and mount it below.
"""

from __future__ import annotations

import os

import typer

from . import (
    _attest,
    _attestation_service,
    _audit,
    _config,
    _crypto,
    _demo,
    _enclave_info,
    _files,
    _functions,
    _measure,
    _serve,
    _tasks,
    _users,
)

__all__ = ["app", "main"]

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="confide: confidential multi-party computing, Teaclave-compatible.")

# The platform: run it, or try it.
app.command("serve")(_serve.serve)
app.command("demo")(_demo.demo)
app.command("attestation-service")(_attestation_service.attestation_service)
app.add_typer(_config.app, name="config")

# Client commands, through the SDK (attest the server, then call it).
app.add_typer(_users.app, name="user")
app.add_typer(_functions.app, name="function")
app.add_typer(_files.app, name="file")
app.add_typer(_tasks.app, name="task")
app.add_typer(_audit.app, name="audit")
app.command("attest")(_attest.attest)

# Local tools: data files (teaclave_cli's options), the auditors' measure and enclave_info.
app.command("encrypt")(_crypto.encrypt)
app.command("decrypt")(_crypto.decrypt)
app.add_typer(_enclave_info.app, name="enclave-info")
app.command("measure")(_measure.measure)


def main() -> None:
    """The ``confide`` entry point (``pyproject.toml``, ``python -m confide``)."""
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    app()
