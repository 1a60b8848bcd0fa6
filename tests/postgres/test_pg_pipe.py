"""The PostgreSQL pipeline (storage/_pgpipe.py): values by type, errors in the middle of a
pipeline, the prepared-statement cache and its cap, connections that outlive a pipe."""

from __future__ import annotations

import os
from typing import Any

import pytest

from confide.crypto.records import RecordSealer
from confide.storage import Database, StorageError, _pgpipe

pytestmark = pytest.mark.postgres


def _db(url: str) -> Database:
    return Database(url, RecordSealer(os.urandom(32)))


def _run(db: Database, statement: str, params: tuple[Any, ...] = (), *, write: bool = False
         ) -> list[tuple[Any, ...]]:
    with (db.write() if write else db.read()) as t:
        return list(t._execute(statement, params).fetchall())  # type: ignore[attr-defined]


def test_values_cross_in_both_directions_with_their_types(pg_url: str) -> None:
    db = _db(pg_url)
    blob = bytes(range(256)) * 3
    row = _run(db, "SELECT %s::bigint, %s::int, %s::smallint, %s::text, %s::varchar, %s::bytea, "
                   "%s::boolean, %s::boolean, NULL::bytea, 1.5::float8, 0.25::float4, "
                   "pg_notify('confide_test', '')",
               (-(2**62), 2**31 - 1, -7, "naïve ✓", "", blob, True, False))
    assert row == [(-(2**62), 2**31 - 1, -7, "naïve ✓", "", blob, True, False, None, 1.5, 0.25,
                    None)]
    assert _run(db, "SELECT %s::text IS NULL", (None,)) == [(True,)]
    db.close()


def test_a_column_type_nobody_decodes_is_a_storage_error_not_garbage(pg_url: str) -> None:
    db = _db(pg_url)
    with pytest.raises(StorageError, match="column type oid 1184 is not decoded"):
        _run(db, "SELECT now()")
    assert _run(db, "SELECT 1::int") == [(1,)]  # the connection is fine
    db.close()


def test_an_unsupported_parameter_type_is_refused_before_anything_is_sent(pg_url: str) -> None:
    db = _db(pg_url)
    with pytest.raises(TypeError, match="cannot send a float"):
        _run(db, "SELECT %s::float8", (1.5,))
    assert _run(db, "SELECT 2::int") == [(2,)]
    db.close()


def test_the_first_error_of_a_pipeline_is_raised_and_the_rest_were_skipped(pg_url: str) -> None:
    db = _db(pg_url)
    with pytest.raises(StorageError, match="DivisionByZero"), db.write() as t:
        t.insert("tasks", "task-1", {"n": 1}, seq=1, status=0)
        t._send("SELECT 1 / 0", ())  # type: ignore[attr-defined]
        t.insert("tasks", "task-2", {"n": 2}, seq=2, status=0)
        t.get("tasks", "task-2")  # waits: the division failed first, and is what is raised
    with db.read() as t:  # nothing of the failed transaction was kept
        assert t.get("tasks", "task-1") is None and t.get("tasks", "task-2") is None
    db.close()


def test_a_failed_read_leaves_its_connection_usable(pg_url: str) -> None:
    db = _db(pg_url)
    with pytest.raises(StorageError, match="UndefinedTable"):
        _run(db, "SELECT * FROM no_such_table")
    assert len(db._idle) == 1  # type: ignore[attr-defined] # kept, not closed
    assert _run(db, "SELECT 3::int") == [(3,)]
    db.close()


def test_statements_beyond_the_prepared_cap_run_unnamed(pg_url: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_pgpipe, "MAX_PREPARED", 2)
    db = _db(pg_url)
    for n in range(6):  # six different statements on one connection: two prepared
        assert _run(db, f"SELECT {n}::int + %s::int", (n,)) == [(2 * n,)]
    assert _run(db, "SELECT count(*)::int FROM pg_prepared_statements") == [(2,)]
    db.close()


def test_a_connection_back_in_the_pool_serves_a_new_pipe(pg_url: str) -> None:
    """A connection handed back (beyond the idle cap, or all of them after a failure)
    returns to SQLAlchemy's pool with its statements deallocated; the next pipe on
    it prepares its own again without a name clash."""
    db = _db(pg_url)
    assert _run(db, "SELECT %s::int", (1,)) == [(1,)]
    db._close_idle()  # type: ignore[attr-defined]
    assert _run(db, "SELECT count(*)::int FROM pg_prepared_statements") == [(1,)]
    assert _run(db, "SELECT %s::int", (2,)) == [(2,)]
    db.close()
