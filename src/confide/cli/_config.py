"""The command line's side of the configuration: ``confide config show`` and
loading it for ``confide serve --config``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ..settings import Settings, SettingsError, load_settings, render_json, render_toml

__all__ = ["ConfigOption", "app", "load_or_exit"]

app = typer.Typer(no_args_is_help=True, help="The operator's configuration.")

#: ``--config FILE`` (or ``CONFIDE_CONFIG``): the operator's TOML file.
ConfigOption = Annotated[Path | None, typer.Option(
    "--config", envvar="CONFIDE_CONFIG", dir_okay=False,
    help="TOML configuration file ([limits], ...); CONFIDE_<SECTION>__<KEY> environment "
         "variables override it. See docs/operations.md.")]


class Format(StrEnum):
    toml = "toml"
    json = "json"


def load_or_exit(path: Path | None, *, doing: str = "cannot start") -> Settings:
    """The effective settings, or exit 2 with every problem on standard error."""
    try:
        return load_settings(path)
    except SettingsError as e:
        typer.echo(f"{doing}: {e}", err=True)
        raise typer.Exit(2) from e


@app.command("show")
def show(config: ConfigOption = None,
         format: Annotated[Format, typer.Option(help="toml or json.")] = Format.toml) -> None:
    """Print the effective configuration (defaults < file < environment), secrets redacted."""
    settings = load_or_exit(config, doing="cannot show the configuration")
    typer.echo(render_toml(settings) if format is Format.toml else render_json(settings), nl=False)

