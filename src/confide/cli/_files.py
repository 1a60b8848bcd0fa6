"""``confide file …``: register encrypted inputs and output locations."""

from __future__ import annotations

import typer

from ._common import console, run, session_client

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Data files.")


@app.command("register-input")
def register_input(url: str, schema: str, key: str, cmac: str, iv: str = "") -> None:
    """Register an encrypted input (key, iv, cmac in hex); prints its id."""
    run(lambda: console.print(session_client().register_input_file(
        url, schema=schema, key=bytes.fromhex(key), iv=bytes.fromhex(iv),
        cmac=bytes.fromhex(cmac))))


@app.command("register-output")
def register_output(url: str, schema: str, key: str, iv: str = "") -> None:
    """Register an output location and its key (hex); prints its id."""
    run(lambda: console.print(session_client().register_output_file(
        url, schema=schema, key=bytes.fromhex(key), iv=bytes.fromhex(iv))))
