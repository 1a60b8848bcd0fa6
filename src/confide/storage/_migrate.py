"""Schema migrations with Alembic, run programmatically (no ``alembic.ini``).

The revisions live in ``migrations/versions``; :func:`upgrade`,
:func:`downgrade` and :func:`current` run them on a connection whose
transaction the caller owns (``Database`` at start, ``confide db`` for
operators), so a failed migration leaves the schema as it was.

Databases made by the hand-written migrations before Alembic carry no
``alembic_version`` table, only ``meta.schema_version``: they are adopted by
stamping the revision of that version (v1 is ``0001``, v2 is ``0002``) before
upgrading. The revisions keep that marker in step, so a release from before
Alembic still opens a database downgraded back to its schema.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, text

__all__ = ["BASE", "HEAD", "MigrationError", "Revision", "current", "downgrade", "history",
           "revision_number", "upgrade"]

BASE = "base"
HEAD = "head"
_LOCATION = Path(__file__).resolve().parent / "migrations"
_LOCK = int.from_bytes(hashlib.sha256(b"confide-migrations").digest()[:8], "big", signed=True)


class MigrationError(Exception):
    """The schema cannot be migrated (unknown or newer revision, failed DDL)."""


@dataclass(frozen=True)
class Revision:
    """One migration: its id, what it follows and the first line of its docstring."""

    id: str
    down: str | None
    doc: str


def _config(conn: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_LOCATION))
    if conn is not None:
        config.attributes["connection"] = conn
    return config


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def history() -> list[Revision]:
    """Every revision, oldest first."""
    return [Revision(s.revision, s.down_revision if isinstance(s.down_revision, str) else None,
                     (s.doc or "").strip().splitlines()[0] if s.doc else "")
            for s in reversed(list(_script().walk_revisions()))]


def head() -> str:
    found = _script().get_current_head()
    if found is None:  # pragma: no cover - the package ships its revisions
        raise MigrationError("no migrations found")
    return found


def revision_number(revision: str | None) -> int:
    """The hand-written mechanism's version of ``revision`` (``None`` is 0): its
    leading number (``"0004"`` is 4, ``"0004_x"`` too)."""
    return 0 if revision is None else int(revision.split("_", 1)[0])


def _legacy_marker(conn: Connection) -> int | None:
    if not conn.dialect.has_table(conn, "meta"):
        return None
    row = conn.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).first()
    if row is None:
        return None
    try:
        return int(bytes(row[0]).decode())
    except (UnicodeDecodeError, ValueError) as e:
        raise MigrationError(f"unreadable schema version marker: {bytes(row[0])!r}") from e


def _lock(conn: Connection) -> None:
    """Nodes sharing a PostgreSQL database migrate one at a time (SQLite's
    ``BEGIN IMMEDIATE`` serialises them already)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})


def current(conn: Connection) -> str | None:
    """The database's revision (``None``: empty), adopting a pre-Alembic marker.

    Raises:
        MigrationError: the revision is unknown to this confide (a newer release
            migrated the database).
    """
    found = MigrationContext.configure(conn).get_current_revision()
    script = _script()
    if found is None:
        marker = _legacy_marker(conn)
        if marker is None or marker == 0:
            return None
        found = f"{marker:04d}"
    try:
        script.get_revision(found)
    except CommandError as e:
        raise MigrationError(f"database schema revision {found} is newer than this confide "
                             f"(head {head()}): upgrade confide, or downgrade the database "
                             "with the release that migrated it") from e
    return found


def _adopt(conn: Connection) -> str | None:
    revision = current(conn)
    if revision is not None and MigrationContext.configure(conn).get_current_revision() is None:
        command.stamp(_config(conn), revision)  # made by the hand-written migrations
    return revision


def _known(revision: str) -> str:
    if revision in (BASE, HEAD):
        return revision
    try:
        script = _script().get_revision(revision)
    except CommandError as e:
        raise MigrationError(f"unknown revision {revision!r}") from e
    if script is None:
        raise MigrationError(f"unknown revision {revision!r}")
    return script.revision


def upgrade(conn: Connection, revision: str = HEAD) -> str | None:
    """Bring the schema up to ``revision``; returns the revision found before."""
    _lock(conn)
    target = _known(revision)
    found = _adopt(conn)
    if target == BASE or (found is not None and target != HEAD
                          and revision_number(found) > revision_number(target)):
        raise MigrationError(f"{revision} is older than the database's {found}: downgrade")
    try:
        command.upgrade(_config(conn), target)
    except CommandError as e:
        raise MigrationError(str(e)) from e
    return found


def downgrade(conn: Connection, revision: str) -> str | None:
    """Take the schema down to ``revision`` (``base``: drop everything);
    returns the revision found before."""
    _lock(conn)
    target = _known(revision)
    found = _adopt(conn)
    if target == HEAD or (target != BASE and revision_number(found) < revision_number(target)):
        raise MigrationError(f"{revision} is newer than the database's {found}: upgrade")
    try:
        command.downgrade(_config(conn), target)
    except CommandError as e:
        raise MigrationError(str(e)) from e
    return found
