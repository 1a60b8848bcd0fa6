"""Database outages become statuses that say so (storage._classify, services._outage)."""

from __future__ import annotations

import logging
import socket
import sqlite3
from pathlib import Path

import psycopg
import pytest

from confide.errors import Code
from confide.services._outage import storage_failure
from confide.storage import StorageError, StorageFull, StorageUnavailable
from confide.storage._db import _classify


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_locked_or_unreachable_database_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(path, timeout=0.05)
    with pytest.raises(sqlite3.OperationalError) as locked:
        other.execute("SELECT * FROM t")
    assert _classify(locked.value) is StorageUnavailable
    holder.rollback()
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(f"host=127.0.0.1 port={_closed_port()} dbname=x connect_timeout=2")
    assert _classify(refused.value) is StorageUnavailable


def test_a_full_database_is_full() -> None:
    assert _classify(sqlite3.OperationalError("database or disk is full")) is StorageFull
    assert _classify(psycopg.errors.DiskFull("could not extend file")) is StorageFull


def test_other_failures_stay_internal() -> None:
    assert _classify(sqlite3.OperationalError("no such table: tasks")) is StorageError
    assert _classify(psycopg.errors.UndefinedTable("relation does not exist")) is StorageError


def test_statuses_name_the_outage_and_the_log_is_rate_limited(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="confide.storage")
    errors = [storage_failure(StorageUnavailable("OperationalError: database is locked"),
                              "create_task") for _ in range(50)]
    assert {(e.code, e.message) for e in errors} == {
        (Code.UNAVAILABLE, "the database is unavailable; retry later")}
    assert errors[0].detail is not None and errors[0].detail.reason == "STORAGE_UNAVAILABLE"
    lines = [r for r in caplog.records if "StorageUnavailable" in r.getMessage()]
    assert len(lines) <= 1 and all(r.exc_info is None for r in lines)  # no traceback per call
    full = storage_failure(StorageFull("OperationalError: database or disk is full"), "x")
    assert full.code == Code.RESOURCE_EXHAUSTED and "no space left" in full.message
    assert storage_failure(StorageError("odd"), "x").code == Code.INTERNAL
