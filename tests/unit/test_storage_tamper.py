"""The database is untrusted: every change an operator makes to a row is refused."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from confide.config import Limits
from confide.crypto.records import RecordSealer
from confide.errors import Code, ServiceError
from confide.services._identity import Principal, Role, RoleKind
from confide.services._notify import Notifier
from confide.services.management import Context, FunctionSpecInput, Management
from confide.storage import Database, Tampered


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'db.sqlite'}", RecordSealer(os.urandom(32)))


def _raw(db: Database) -> sqlite3.Connection:
    return sqlite3.connect(db.url.removeprefix("sqlite:///"))


def test_rejects_a_flipped_byte_in_a_sealed_body(db: Database) -> None:
    with db.write() as t:
        t.insert("users", "alice", {"role": "DataOwner-a"})
    with _raw(db) as c:
        body = bytearray(c.execute("select body from users").fetchone()[0])
        body[-1] ^= 1
        c.execute("update users set body = ?", (bytes(body),))
    with pytest.raises(Tampered), db.read() as t:
        t.get("users", "alice")


def test_rejects_an_edited_index_column(db: Database) -> None:
    """Flipping a task's status column (e.g. to Approved) is detected."""
    with db.write() as t:
        t.insert("tasks", "task-1", {"x": 1}, seq=1, status=0)
    with _raw(db) as c:
        c.execute("update tasks set status = 2")
    with pytest.raises(Tampered), db.read() as t:
        t.get("tasks", "task-1")


def test_rejects_a_row_copied_under_another_id(db: Database) -> None:
    with db.write() as t:
        t.insert("users", "admin", {"role": "PlatformAdmin"})
        t.insert("users", "mallory", {"role": "DataOwner-x"})
    with _raw(db) as c:
        admin_body = c.execute("select body from users where id='admin'").fetchone()[0]
        c.execute("update users set body = ? where id='mallory'", (admin_body,))
    with pytest.raises(Tampered), db.read() as t:
        t.get("users", "mallory")


def test_a_different_platform_key_cannot_read_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with Database(url, RecordSealer(os.urandom(32))).write() as t:
        t.insert("users", "a", {"secret": "x"})
    with pytest.raises(Tampered), Database(url, RecordSealer(os.urandom(32))).read() as t:
        t.get("users", "a")


def test_secrets_never_reach_the_database_in_clear(db: Database) -> None:
    mgmt = Management(Context(db, Notifier(), Limits(), lambda: 0.0), role_of=lambda _u: None)
    who = Principal("owner", Role(RoleKind.FUNCTION_OWNER))
    mgmt.functions.register(who, FunctionSpecInput(
        "f", "", "python", False, b"TOP-SECRET-PAYLOAD", [], [], [], [], -1))
    raw = Path(db.url.removeprefix("sqlite:///")).read_bytes()
    for wal in Path(db.url.removeprefix("sqlite:///")).parent.glob("*-wal"):
        raw += wal.read_bytes()
    assert b"TOP-SECRET-PAYLOAD" not in raw


def test_schema_from_a_newer_version_is_refused(db: Database) -> None:
    with _raw(db) as c:
        c.execute("update alembic_version set version_num = '0099'")
    from confide.storage import StorageError

    with pytest.raises(StorageError, match="newer"):
        db.migrate()


def test_a_tampered_row_surfaces_as_a_clear_internal_error(db: Database) -> None:
    mgmt = Management(Context(db, Notifier(), Limits(), lambda: 0.0), role_of=lambda _u: None)
    admin = Principal("admin", Role(RoleKind.PLATFORM_ADMIN))
    fid = mgmt.functions.register(admin, FunctionSpecInput(
        "f", "", "builtin", True, b"", [], [], [], [], -1))
    with _raw(db) as c:
        c.execute("update functions set owner = 'mallory'")
    with pytest.raises(Tampered):
        mgmt.functions.get(admin, fid)
    assert ServiceError(Code.INTERNAL, "x").code == Code.INTERNAL
