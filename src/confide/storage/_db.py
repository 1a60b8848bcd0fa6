"""The database behind one small interface, over SQLite (default) or PostgreSQL.

Rows are opaque to the database: see ``_schema``. A :class:`Txn` reads and
writes *records* (plain dicts, CBOR-encoded and sealed) by table and id; the
caller never sees SQL. SQLite serialises writers with a process-wide lock (no
busy-wait sleeps on the hot path); PostgreSQL uses row locks
(``SELECT … FOR UPDATE``) so several control-plane nodes can share it.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import cbor2
from sqlalchemy import BigInteger, Engine, create_engine, event, func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from ..crypto.records import RecordSealer, TamperedRecord
from . import _schema
from ._schema import tables

__all__ = ["Database", "Row", "StorageError", "Tampered", "Txn"]

Record = dict[str, Any]


class StorageError(Exception):
    """The database failed (unreachable, constraint, corrupt)."""


class Tampered(StorageError):
    """A row failed authentication: somebody changed the database."""


def _pk(table: str) -> tuple[Any, bool]:
    """The primary-key column and whether it is numeric (ids are text in the API)."""
    col = tables[table].primary_key.columns.values()[0]
    return col, isinstance(col.type, BigInteger)


def _key(table: str, row_id: str) -> Any:
    return int(row_id) if _pk(table)[1] else row_id


def _columns(table: str, row_id: str, cols: Mapping[str, Any]) -> list[Any]:
    return [table, row_id, *[cols[k] for k in sorted(cols)]]


@dataclass
class Row:
    id: str
    columns: dict[str, Any]
    body: Record


class Txn:
    """One database transaction. Obtain it from :meth:`Database.read` / ``write``."""

    def __init__(self, conn: Connection, sealer: RecordSealer, postgres: bool) -> None:
        self._conn = conn
        self._sealer = sealer
        self._postgres = postgres

    # -- sealing ----------------------------------------------------------
    def _seal(self, table: str, row_id: str, cols: Mapping[str, Any], body: Record) -> bytes:
        return self._sealer.seal(table, row_id, _columns(table, row_id, cols), cbor2.dumps(body))

    def _open(self, table: str, row_id: str, cols: Mapping[str, Any], blob: bytes) -> Record:
        try:
            plain = self._sealer.open(table, row_id, _columns(table, row_id, cols), blob)
        except TamperedRecord as e:
            raise Tampered(str(e)) from e
        body = cbor2.loads(plain)
        if not isinstance(body, dict):
            raise Tampered(f"{table}/{row_id}: body is not a record")
        return body

    def _row(self, table: str, raw: Any) -> Row:
        t = tables[table]
        key = t.primary_key.columns.values()[0].name
        data = dict(raw._mapping)
        row_id = str(data.pop(key))
        blob = data.pop("body")
        return Row(row_id, data, self._open(table, row_id, data, blob))

    # -- API --------------------------------------------------------------
    def get(self, table: str, row_id: str, *, lock: bool = False) -> Row | None:
        t = tables[table]
        stmt = select(t).where(_pk(table)[0] == _key(table, row_id))
        if lock and self._postgres:
            stmt = stmt.with_for_update()
        raw = self._conn.execute(stmt).first()
        return None if raw is None else self._row(table, raw)

    def insert(self, table: str, row_id: str, body: Record, **cols: Any) -> None:
        t = tables[table]
        self._conn.execute(t.insert().values({
            _pk(table)[0].name: _key(table, row_id),
            "body": self._seal(table, row_id, cols, body), **cols}))

    def update(self, table: str, row_id: str, body: Record, **cols: Any) -> None:
        t = tables[table]
        result = self._conn.execute(
            t.update()
            .where(_pk(table)[0] == _key(table, row_id))
            .values(body=self._seal(table, row_id, cols, body), **cols)
        )
        if result.rowcount != 1:
            raise StorageError(f"{table}/{row_id}: update hit {result.rowcount} rows")

    def delete(self, table: str, row_id: str) -> None:
        t = tables[table]
        self._conn.execute(t.delete().where(_pk(table)[0] == _key(table, row_id)))

    def scan(
        self,
        table: str,
        *,
        where: Mapping[str, Any] | None = None,
        order_by: str | None = None,
        descending: bool = False,
        limit: int | None = None,
        exclude: Mapping[str, Any] | None = None,
        lock: bool = False,
        after: int | None = None,
    ) -> Iterator[Row]:
        t = tables[table]
        stmt = select(t)
        for k, v in (where or {}).items():
            stmt = stmt.where(t.c[k] == v)
        for k, v in (exclude or {}).items():
            stmt = stmt.where(t.c[k] != v)
        if after is not None and order_by:
            col = t.c[order_by]
            stmt = stmt.where(col < after if descending else col > after)
        if order_by:
            stmt = stmt.order_by(t.c[order_by].desc() if descending else t.c[order_by])
        if limit is not None:
            stmt = stmt.limit(limit)
        if lock and self._postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        for raw in self._conn.execute(stmt).all():
            yield self._row(table, raw)

    def serialize(self, name: str) -> None:
        """Hold a named lock until the transaction ends, across every node.

        SQLite writers are serialised already; on PostgreSQL this is an
        advisory transaction lock (e.g. for appending to the audit chain).
        """
        if self._postgres:
            key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
            self._conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})

    def next_seq(self, table: str, column: str = "seq") -> int:
        t = tables[table]
        value = self._conn.execute(select(func.max(t.c[column]))).scalar()
        return int(value or 0) + 1


class Database:
    """Owns the engine, the schema version and transactions."""

    def __init__(self, url: str, sealer: RecordSealer, *, synchronous: str = "NORMAL") -> None:
        self.url = url
        self._sealer = sealer
        self.postgres = url.startswith("postgresql")
        self._write_lock = threading.RLock() if not self.postgres else None
        kwargs: dict[str, Any] = {}
        if not self.postgres:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            kwargs["pool_size"] = 16
            kwargs["max_overflow"] = 64
        else:
            kwargs["pool_size"] = 16
            kwargs["max_overflow"] = 32
            kwargs["pool_pre_ping"] = True
        try:
            self.engine: Engine = create_engine(url, **kwargs)
        except SQLAlchemyError as e:
            raise StorageError(f"cannot open database: {e}") from e
        if not self.postgres:
            self._sqlite_setup(synchronous)
        self.migrate()

    def _sqlite_setup(self, synchronous: str) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise StorageError(f"invalid synchronous mode {synchronous!r}")

        @event.listens_for(self.engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(self.engine, "begin")
        def _begin(conn: Connection) -> None:
            mode = "IMMEDIATE" if conn.get_execution_options().get("confide_write") else "DEFERRED"
            conn.exec_driver_sql(f"BEGIN {mode}")

    def migrate(self) -> int:
        """Bring the schema to :data:`SCHEMA_VERSION`; returns the version found."""
        with self._connect(write=True) as conn, conn.begin():
            found = _schema.current_version(conn)
            if found > _schema.SCHEMA_VERSION:
                raise StorageError(f"database schema v{found} is newer than this confide "
                                   f"(v{_schema.SCHEMA_VERSION})")
            for v in range(found, _schema.SCHEMA_VERSION):
                _schema.MIGRATIONS[v](conn)
            if found != _schema.SCHEMA_VERSION:
                _schema.set_version(conn, _schema.SCHEMA_VERSION)
            return found

    @contextmanager
    def _connect(self, *, write: bool) -> Iterator[Connection]:
        lock = self._write_lock if write else None
        if lock is not None:
            lock.acquire()
        try:
            with self.engine.connect() as conn:
                yield conn.execution_options(confide_write=write)
        finally:
            if lock is not None:
                lock.release()

    @contextmanager
    def _txn(self, write: bool) -> Iterator[Txn]:
        try:
            with self._connect(write=write) as conn, conn.begin():
                yield Txn(conn, self._sealer, self.postgres)
        except SQLAlchemyError as e:
            raise StorageError(str(e.__class__.__name__) + ": " + str(e).splitlines()[0]) from e

    def read(self) -> Any:
        """A read-only transaction (context manager yielding a :class:`Txn`)."""
        return self._txn(False)

    def write(self) -> Any:
        """A read-write transaction; serialised with other writers on SQLite."""
        return self._txn(True)

    def close(self) -> None:
        self.engine.dispose()
