"""``confide profile …``: the profiles under ``$CONFIDE_HOME`` (users and servers side by side)."""

from __future__ import annotations

import shutil
from typing import Annotated, Any

import typer

from . import _exit
from ._common import Json, emit, fail
from ._session import Session, active_profile, profile_dir, profiles, valid_profile

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Profiles: several users and servers side by side.")


def _describe(name: str) -> dict[str, Any]:
    s = Session.load(name)
    return {"profile": name, "active": name == active_profile(),
            "user_id": s.user_id if s else "", "logged_in": bool(s and s.token),
            "server": s.server() if s else "",
            "verified_by": ("" if s is None else
                            f"attestation ({s.data_dir})" if s.data_dir else
                            f"pinned certificate ({s.server_cert})")}


@app.command("list")
def list_profiles(json_out: Json = False) -> None:
    """The profiles and who each is logged in as."""
    rows = [_describe(n) for n in profiles()]

    def text() -> None:
        for r in rows:
            mark = "*" if r["active"] else " "
            who = r["user_id"] + ("" if r["logged_in"] else " (logged out)")
            typer.echo(f"{mark} {r['profile']}\t{who}\t{r['server']}")

    emit(rows, json_out, text)


@app.command("show")
def show(name: Annotated[str | None, typer.Argument(help="Default: the active one.")] = None,
         json_out: Json = False) -> None:
    """One profile: its user, server and how the server is verified."""
    name = name or active_profile()
    if name not in profiles():
        raise fail(f"no profile {name!r}", _exit.DENIED)
    row = _describe(name)

    def text() -> None:
        for key, value in row.items():
            typer.echo(f"{key}: {value}")

    emit(row, json_out, text)


@app.command("remove")
def remove(name: str) -> None:
    """Delete a profile: its session and the keys of the files it encrypted."""
    directory = profile_dir(name)
    if not valid_profile(name) or not directory.is_dir():
        raise fail(f"no profile {name!r}", _exit.DENIED)
    shutil.rmtree(directory)
    typer.echo(f"removed profile {name}")
