"""``confide db …``: the database schema (Alembic revisions) for operators.

Runs where the database is, without the platform secret: a migration changes
tables and indexes, never a sealed row. ``confide serve`` upgrades to the head
by itself at every start; these commands are for checking, upgrading ahead of
a rollout, and downgrading before going back to an older release.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from . import _exit
from ._common import DataDir, Json, emit, fail

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="The database schema (migrations).")

DatabaseUrl = Annotated[str | None, typer.Option(
    "--database-url", envvar="CONFIDE_DATABASE_URL",
    help="PostgreSQL URL (default: the SQLite database in --data-dir).")]


def _url(data_dir: Path, database_url: str | None) -> str:
    if database_url:
        return database_url
    path = data_dir / "confide.db"
    if not path.is_file():
        raise fail(f"error: no database at {path}", _exit.DENIED)
    return f"sqlite:///{path}"


def _step(data_dir: Path, database_url: str | None, json_out: bool, revision: str,
          down: bool) -> None:
    from ..storage import Schema, StorageError

    schema = Schema(_url(data_dir, database_url))
    try:
        before = schema.downgrade(revision) if down else schema.upgrade(revision)
        after = schema.current()
    except StorageError as e:
        raise fail(f"error: {e}", _exit.SERVER) from e
    finally:
        schema.close()
    emit({"from": before, "to": after}, json_out,
         f"schema {before or 'empty'} -> {after or 'empty'}")


@app.command("current")
def current(data_dir: DataDir = Path("confide-data"), database_url: DatabaseUrl = None,
            json_out: Json = False) -> None:
    """Show the database's revision and the head this confide knows."""
    from ..storage import HEAD, Schema, StorageError, history

    schema = Schema(_url(data_dir, database_url))
    try:
        revision = schema.current()
    except StorageError as e:
        raise fail(f"error: {e}", _exit.SERVER) from e
    finally:
        schema.close()
    revisions = history()
    head = revisions[-1].id
    emit({"current": revision, "head": head, "up_to_date": revision == head,
          "revisions": [{"id": r.id, "down": r.down, "doc": r.doc} for r in revisions]},
         json_out, f"{revision or 'empty'} ({HEAD})" if revision == head else
         f"{revision or 'empty'} (head is {head}: `confide db upgrade`)")


@app.command("upgrade")
def upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
            data_dir: DataDir = Path("confide-data"), database_url: DatabaseUrl = None,
            json_out: Json = False) -> None:
    """Upgrade the schema to REVISION (default: head), in one transaction."""
    _step(data_dir, database_url, json_out, revision, down=False)


@app.command("downgrade")
def downgrade(revision: Annotated[str, typer.Argument(
                  help="Target revision; `base` drops every table.")],
              data_dir: DataDir = Path("confide-data"), database_url: DatabaseUrl = None,
              yes: Annotated[bool, typer.Option(
                  "--yes", help="Confirm `base`: every record is lost.")] = False,
              json_out: Json = False) -> None:
    """Downgrade the schema to REVISION, in one transaction (stop the servers first)."""
    from ..storage import BASE

    if revision == BASE and not yes:
        raise fail("error: downgrading to base drops every table and record; "
                   "add --yes if that is what you want", _exit.USAGE)
    _step(data_dir, database_url, json_out, revision, down=True)
