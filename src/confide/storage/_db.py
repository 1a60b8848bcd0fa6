"""The database behind one small interface, over SQLite (default) or PostgreSQL.

Rows are opaque to the database: see ``_schema``. A transaction (the
:class:`~confide.storage.Txn` protocol of ``_txn``; here ``_SqlTxn``) reads and
writes *records* (plain dicts, CBOR-encoded and sealed) by table and id; the
caller never sees SQL. SQLite serialises writers with a process-wide lock (no
busy-wait sleeps on the hot path); PostgreSQL uses row locks
(``SELECT … FOR UPDATE``) so several control-plane nodes can share it.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

import cbor2
from sqlalchemy import BigInteger, Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from .. import _suspend
from ..crypto.records import RecordSealer, TamperedRecord, row_prefix
from ..telemetry._metrics import DB_TRANSACTION_SECONDS
from . import _migrate
from ._channels import Listener, LocalChannels, PostgresListener, check_channel, check_payload
from ._migrate import MigrationError
from ._schema import tables
from ._txn import Column, Get, Record, Row, Txn

if TYPE_CHECKING:
    from ._pgpipe import Pipe

__all__ = ["Conflict", "Database", "ResealBatch", "Schema", "Stale", "StorageError", "Tampered"]

T = TypeVar("T")
P = ParamSpec("P")

_DB_ERRORS: tuple[type[Exception], ...] = (SQLAlchemyError, sqlite3.Error)
_CONFLICTS: tuple[type[Exception], ...] = (IntegrityError, sqlite3.IntegrityError)
#: Errors after which a PostgreSQL connection is not reused.
_BROKEN: tuple[type[Exception], ...] = (SQLAlchemyError,)
try:  # the DB-API errors of the PostgreSQL driver, when it is installed
    from psycopg import Error as _PsycopgError
    from psycopg import IntegrityError as _PsycopgIntegrityError
    from psycopg import InterfaceError as _PsycopgInterfaceError
    from psycopg import OperationalError as _PsycopgOperationalError

    _DB_ERRORS += (_PsycopgError,)
    _CONFLICTS += (_PsycopgIntegrityError,)
    _BROKEN += (_PsycopgOperationalError, _PsycopgInterfaceError)
except ImportError:  # pragma: no cover - the postgres extra is optional
    pass

#: The SQLSTATE of ``1 / 0``: how a pipelined update tells that it hit no row.
_NO_ROW_UPDATED = "22012"
#: The SQLSTATE of ``ln(0)``: how a pipelined ``check_newest`` tells that it failed.
_NOT_NEWEST = "2201E"

_SECONDS = {False: DB_TRANSACTION_SECONDS.labels("read"),
            True: DB_TRANSACTION_SECONDS.labels("write")}


class StorageError(Exception):
    """The database failed (unreachable, constraint, corrupt)."""


class Conflict(StorageError):
    """A write broke a uniqueness constraint: another writer inserted that key first."""


class Tampered(StorageError):
    """A row failed authentication: somebody changed the database."""


class Stale(StorageError):
    """A row checked with ``Txn.check_newest`` was not the newest any more: read again."""


class StorageUnavailable(StorageError):
    """The database cannot be reached now, or stayed locked past its timeout: retry later."""


class StorageFull(StorageError):
    """The database (or the disk under it) has no space left."""


#: SQLSTATE classes and codes (PostgreSQL) and SQLite texts, by what they mean to a caller.
_FULL_SQLSTATES = ("53",)  # insufficient resources: disk full, out of memory, too many connections
_UNAVAILABLE_SQLSTATES = ("08", "57P", "55P03", "40P01", "HV")  # connection, shutdown, lock
_FULL_TEXTS = ("database or disk is full", "no space left on device")
_UNAVAILABLE_TEXTS = ("database is locked", "unable to open database", "disk i/o error",
                      "connection", "could not connect", "server closed", "timeout")


def _classify(e: BaseException) -> type[StorageError]:
    """Which StorageError ``e`` (a driver's or SQLAlchemy's exception) is to a caller."""
    cause = getattr(e, "orig", None) or e  # SQLAlchemy wraps the driver's exception
    sqlstate = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None) or ""
    text = str(cause).lower()
    if sqlstate.startswith(_FULL_SQLSTATES) or any(t in text for t in _FULL_TEXTS):
        return StorageFull
    if sqlstate.startswith(_UNAVAILABLE_SQLSTATES) or any(t in text for t in _UNAVAILABLE_TEXTS):
        return StorageUnavailable
    return StorageError

@dataclass(frozen=True)
class ResealBatch:
    """One step of :meth:`Database.reseal_batch`: where to go on from, what it did."""

    after: str | None  # the last row id looked at; None: the table is done
    resealed: int



def _columns(row_id: str, table: str, cols: Mapping[str, Column]) -> list[Column]:
    """What a row's seal authenticates besides its body: table, id, every plain column."""
    return [table, row_id, *[cols[k] for k in sorted(cols)]]


class _TableSql:
    """The few statements a table needs, written once (the hot path does not
    build SQLAlchemy expressions: their compilation dominated the CPU profile)."""

    def __init__(self, table: str, mark: str) -> None:
        t = tables[table]
        self.name = table
        self.columns = [c.name for c in t.columns]
        self.pk = t.primary_key.columns.values()[0].name
        self.numeric_pk = isinstance(t.c[self.pk].type, BigInteger)
        self.plain = [c for c in self.columns if c not in (self.pk, "body")]
        self.mark = mark
        cols = ", ".join(self.columns)
        self.select = f"SELECT {cols} FROM {table}"
        self.get = f"{self.select} WHERE {self.pk} = {mark}"
        self.insert_prefix = f"INSERT INTO {table} ({{}}) VALUES ({{}})"
        self.delete = f"DELETE FROM {table} WHERE {self.pk} = {mark}"

    def key(self, row_id: str) -> Any:
        return int(row_id) if self.numeric_pk else row_id

    def column(self, name: str) -> str:
        if name not in self.columns:
            raise StorageError(f"{self.name} has no column {name!r}")
        return name


class _SqlTxn(Txn):
    """One SQL transaction (the :class:`Txn` of :class:`Database`): on a SQLite
    DB-API cursor, or on a PostgreSQL connection in pipeline mode (``_pgpipe``)."""

    def __init__(self, cursor: Any, sealer: RecordSealer, sql: Mapping[str, _TableSql], *,
                 pipe: Pipe | None = None, write: bool = False) -> None:
        self._cursor = cursor
        self._sealer = sealer
        self._postgres = pipe is not None
        self._sql = sql
        # On PostgreSQL a statement whose result nobody reads (BEGIN, insert,
        # delete, update) is sent without waiting and goes to the server with
        # the next read or the commit, so a write transaction costs one round
        # trip plus one per read; reads outside a write run in autocommit.
        self._pipe = pipe
        self._write = write
        self._begun = False
        self._updated: list[str] = []
        self._checked: list[str] = []

    def _begin(self) -> None:
        """Open a PostgreSQL write transaction with its first statement."""
        if not self._begun and self._pipe is not None:
            self._begun = True
            self._pipe.send("BEGIN")
            self._pipe.explicit = True

    def _execute(self, statement: str, params: Sequence[Any] = ()) -> Any:
        """Run ``statement`` now; the result has ``fetchone``/``fetchall``."""
        if self._pipe is None:
            self._cursor.execute(statement, tuple(params))
            return self._cursor
        result = self._send(statement, params)
        result.fetchall()
        return result

    def _send(self, statement: str, params: Sequence[Any]) -> Any:
        """A statement whose result is not read now (pipelined on PostgreSQL)."""
        if self._pipe is None:
            return self._execute(statement, params)
        if self._write:
            self._begin()
        return self._pipe.send(statement, params)

    def commit(self) -> None:
        """End the transaction on PostgreSQL: COMMIT (or, for a read, the end of
        what is still in flight) and the only wait for the server.

        An error of any statement still in flight (a duplicate key, an update
        that hit no row) arrives here, before COMMIT ran: the server skipped
        it, and the caller rolls back (see :meth:`meaning`).
        """
        if self._pipe is None:
            return
        if self._begun:
            self._pipe.send("COMMIT")
            self._pipe.sync()
            self._pipe.explicit = False
        else:
            self._pipe.finish()

    def meaning(self, e: BaseException) -> StorageError | None:
        """What a database error of a pipelined write means to the caller, when
        it comes from one of our own server-side checks."""
        state = getattr(e, "sqlstate", None)
        if state == _NO_ROW_UPDATED and self._updated:
            return StorageError(f"{', '.join(self._updated)}: update hit 0 rows")
        if state == _NOT_NEWEST and self._checked:
            return Stale(f"{', '.join(self._checked)}: not the newest row any more")
        return None

    # -- sealing ----------------------------------------------------------
    def _seal(self, table: str, row_id: str, cols: Mapping[str, Column], body: Record) -> bytes:
        return self._sealer.seal(table, row_id, _columns(row_id, table, cols), cbor2.dumps(body))

    def _open(self, table: str, row_id: str, cols: Mapping[str, Column], blob: bytes) -> Record:
        try:
            plain = self._sealer.open(table, row_id, _columns(row_id, table, cols), blob)
        except TamperedRecord as e:
            raise Tampered(str(e)) from e
        body = cbor2.loads(plain)
        if not isinstance(body, dict):
            raise Tampered(f"{table}/{row_id}: body is not a record")
        return body

    def _row(self, sql: _TableSql, raw: Sequence[Any]) -> Row:
        data = dict(zip(sql.columns, raw, strict=True))
        row_id = str(data.pop(sql.pk))
        blob = bytes(data.pop("body"))
        return Row(row_id, data, self._open(sql.name, row_id, data, blob), blob)

    def _check_columns(self, sql: _TableSql, cols: Mapping[str, Column]) -> None:
        if set(cols) != set(sql.plain):
            raise StorageError(f"{sql.name}: columns {sorted(cols)} != {sorted(sql.plain)}")

    # -- API --------------------------------------------------------------
    def get(self, table: str, row_id: str, *, lock: bool = False) -> Row | None:
        sql = self._sql[table]
        statement = sql.get + (" FOR UPDATE" if lock and self._postgres else "")
        raw = self._execute(statement, (sql.key(row_id),)).fetchone()
        return None if raw is None else self._row(sql, raw)

    def get_many(self, *gets: Get) -> list[Row | None]:
        if self._pipe is None:  # one statement after the other
            return [self.get(g.table, g.row_id, lock=g.lock) for g in gets]
        # Pipelined: every SELECT is sent before the first result is read.
        sent = []
        for g in gets:
            sql = self._sql[g.table]
            sent.append((sql, self._send(sql.get + (" FOR UPDATE" if g.lock else ""),
                                         (sql.key(g.row_id),))))
        rows: list[Row | None] = []
        for sql, cursor in sent:
            raw = cursor.fetchone()
            rows.append(None if raw is None else self._row(sql, raw))
        return rows

    def insert(self, table: str, row_id: str, body: Record, **cols: Column) -> Row:
        sql = self._sql[table]
        self._check_columns(sql, cols)
        names = [sql.pk, "body", *cols]
        seal = self._seal(table, row_id, cols, body)
        values = [sql.key(row_id), seal, *cols.values()]
        self._send(sql.insert_prefix.format(", ".join(names),
                                            ", ".join([sql.mark] * len(names))), values)
        return Row(row_id, dict(cols), body, seal)

    def check_newest(self, table: str, row: Row, order_by: str) -> None:
        sql = self._sql[table]
        if row.seal is None:
            raise StorageError(f"{table}/{row.id}: no seal to check")
        newest = (f"SELECT {sql.pk}, body FROM {sql.name} "
                  f"ORDER BY {sql.column(order_by)} DESC LIMIT 1")
        if self._pipe is None:
            raw = self._execute(newest).fetchone()
            if raw is None or str(raw[0]) != row.id or bytes(raw[1]) != row.seal:
                raise Stale(f"{table}/{row.id}: not the newest row any more")
            return
        # ln(0) fails the transaction unless the newest row is this one, byte for byte.
        self._checked.append(f"{table}/{row.id}")
        self._send(f"SELECT ln(COUNT(*)) FROM ({newest}) h "
                   f"WHERE h.{sql.pk} = {sql.mark} AND h.body = {sql.mark}",
                   (sql.key(row.id), row.seal))

    def update(self, table: str, row_id: str, body: Record, **cols: Column) -> None:
        sql = self._sql[table]
        self._check_columns(sql, cols)
        sets = ", ".join(f"{name} = {sql.mark}" for name in ["body", *cols])
        values = [self._seal(table, row_id, cols, body), *cols.values(), sql.key(row_id)]
        statement = f"UPDATE {sql.name} SET {sets} WHERE {sql.pk} = {sql.mark}"
        if self._pipe is not None:
            # Pipelined, its row count is known only after the commit was sent:
            # the server checks it instead, failing the transaction (division by
            # zero, mapped back in ``commit``) when the update hit no row.
            self._updated.append(f"{table}/{row_id}")
            self._send(f"WITH u AS ({statement} RETURNING 1) SELECT 1 / COUNT(*) FROM u",
                       values)
            return
        cursor = self._send(statement, values)
        if cursor.rowcount != 1:
            raise StorageError(f"{table}/{row_id}: update hit {cursor.rowcount} rows")

    def delete(self, table: str, row_id: str) -> None:
        sql = self._sql[table]
        self._send(sql.delete, (sql.key(row_id),))

    def delete_below(self, table: str, column: str, bound: int) -> None:
        sql = self._sql[table]
        self._send(f"DELETE FROM {sql.name} WHERE {sql.column(column)} < {sql.mark}",
                   (int(bound),))

    def delete_beyond(self, table: str, order_by: str, keep: int,
                      where: Mapping[str, Column] | None = None) -> None:
        sql = self._sql[table]
        order = sql.column(order_by)
        clauses = [f"{sql.column(name)} = {sql.mark}" for name in (where or {})]
        params = list((where or {}).values())
        match = "".join(f" AND {c}" for c in clauses)
        inner = " WHERE " + " AND ".join(clauses) if clauses else ""
        self._send(f"DELETE FROM {sql.name} WHERE {order} <= (SELECT {order} FROM {sql.name}"
                   f"{inner} ORDER BY {order} DESC LIMIT 1 OFFSET {int(keep)}){match}",
                   [*params, *params])

    def scan(
        self,
        table: str,
        *,
        where: Mapping[str, Column] | None = None,
        order_by: str | None = None,
        descending: bool = False,
        limit: int | None = None,
        exclude: Mapping[str, Column] | None = None,
        lock: bool = False,
    ) -> Iterator[Row]:
        sql = self._sql[table]
        clauses: list[str] = []
        params: list[Any] = []
        for op, items in (("=", where), ("<>", exclude)):
            for name, value in (items or {}).items():
                clauses.append(f"{sql.column(name)} {op} {sql.mark}")
                params.append(value)
        statement = sql.select + (" WHERE " + " AND ".join(clauses) if clauses else "")
        if order_by:
            statement += f" ORDER BY {sql.column(order_by)}" + (" DESC" if descending else "")
        if limit is not None:
            statement += f" LIMIT {int(limit)}"
        if lock and self._postgres:
            statement += " FOR UPDATE SKIP LOCKED"
        for raw in self._execute(statement, params).fetchall():
            yield self._row(sql, raw)

    def unverified_ids(self, table: str) -> list[str]:
        """Every primary key of ``table``, read without opening a body.

        Unauthenticated (the database is untrusted): only for maintenance that
        stays correct whatever the ids are, such as indexing existing rows.
        """
        sql = self._sql[table]
        return [str(raw[0]) for raw in
                self._execute(f"SELECT {sql.pk} FROM {sql.name}").fetchall()]

    def serialize(self, name: str) -> None:
        """Hold a named lock until the transaction ends, across every node.

        SQLite writers are serialised already; on PostgreSQL this is an
        advisory transaction lock (e.g. for appending to the audit chain).
        """
        if self._postgres:
            key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
            self._send("SELECT pg_advisory_xact_lock(%s)", (key,))

    def count_by(self, table: str, column: str) -> dict[Any, int]:
        """Row counts per value of a plain ``column`` (unauthenticated: metrics only)."""
        sql = self._sql[table]
        name = sql.column(column)
        statement = f"SELECT {name}, COUNT(*) FROM {sql.name} GROUP BY {name}"
        return {value: int(n) for value, n in self._execute(statement).fetchall()}

    def next_seq(self, table: str, column: str = "seq") -> int:
        sql = self._sql[table]
        value = self._execute(f"SELECT MAX({sql.column(column)}) FROM {sql.name}").fetchone()[0]
        return int(value or 0) + 1


def _sqlite_setup(engine: Engine, synchronous: str) -> None:
    """WAL, the synchronous mode, and transactions that we begin ourselves (so
    DDL is transactional too and writers take the lock up front)."""
    if synchronous not in ("NORMAL", "FULL"):
        raise StorageError(f"invalid synchronous mode {synchronous!r}")

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get("confide_write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")


class Schema:
    """The schema of a database, for operators (``confide db``).

    Needs no key: migrations change tables, never a sealed body. Each call is
    one transaction (all revisions applied or none).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self._engine = create_engine(url, poolclass=NullPool)
        except SQLAlchemyError as e:
            raise StorageError(f"cannot open database: {e}") from e
        if not url.startswith("postgresql"):
            _sqlite_setup(self._engine, "FULL")

    def _run(self, step: Callable[[Connection], T]) -> T:
        try:
            with self._engine.connect() as conn:
                conn = conn.execution_options(confide_write=True)
                with conn.begin():
                    return step(conn)
        except MigrationError as e:
            raise StorageError(str(e)) from e
        except _DB_ERRORS as e:
            raise StorageError(str(e.__class__.__name__) + ": " + str(e).splitlines()[0]) from e

    def current(self) -> str | None:
        """The revision of the database (``None``: empty)."""
        return self._run(_migrate.current)

    def upgrade(self, revision: str = _migrate.HEAD) -> str | None:
        """Upgrade to ``revision``; returns the revision before."""
        return self._run(lambda conn: _migrate.upgrade(conn, revision))

    def downgrade(self, revision: str) -> str | None:
        """Downgrade to ``revision`` (``base`` drops every table); returns the revision before."""
        return self._run(lambda conn: _migrate.downgrade(conn, revision))

    def close(self) -> None:
        self._engine.dispose()


#: How long a PostgreSQL statement waits for a lock (a table locked by somebody
#: else) before its transaction fails with ``StorageError``.
LOCK_TIMEOUT_MS = 10_000
_SQLITE_IDLE = 16  # idle connections kept between transactions (Database._idle)
_POSTGRES_IDLE = 32


def _close_quietly(raw: Any) -> None:
    try:
        raw.close()
    except _DB_ERRORS:
        pass


class _PgConnection:
    """A pooled PostgreSQL connection and the pipeline that drives it."""

    def __init__(self, raw: Any) -> None:
        from ._pgpipe import Pipe  # the postgres extra

        self.raw = raw
        self.pipe = Pipe(raw.driver_connection)

    def close(self) -> None:
        self.pipe.release()
        _close_quietly(self.raw)


class Database:
    """Owns the engine, the schema and transactions.

    Opening migrates the schema up to ``revision`` (the head; tests build older
    databases with an older one).
    """

    def __init__(self, url: str, sealer: RecordSealer, *, synchronous: str = "NORMAL",
                 revision: str = _migrate.HEAD) -> None:
        self.url = url
        self._sealer = sealer
        self.postgres = url.startswith("postgresql")
        self._write_lock = threading.RLock() if not self.postgres else None
        # The hot path keeps its own LIFO of connections instead of a SQLAlchemy
        # pool checkout per transaction (which, for PostgreSQL, pinged the server:
        # one more round trip per transaction). A broken one is dropped at once.
        self._idle: list[Any] = []  # SQLite DB-API connections, or _PgConnection
        self._idle_cap = _POSTGRES_IDLE if self.postgres else _SQLITE_IDLE
        self._local = LocalChannels()
        self._listeners: list[PostgresListener] = []
        mark = "%s" if self.postgres else "?"
        self._table_sql = {name: _TableSql(name, mark) for name in tables}
        kwargs: dict[str, Any] = {}
        if not self.postgres:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            kwargs["pool_size"] = 16
            kwargs["max_overflow"] = 64
        else:
            kwargs["pool_size"] = 16
            kwargs["max_overflow"] = 48
            if synchronous not in ("NORMAL", "FULL"):
                raise StorageError(f"invalid synchronous mode {synchronous!r}")
            # NORMAL: as SQLite's WAL NORMAL, a commit does not wait for the log to
            # reach the disk (a crash of the database host may lose the last commits,
            # never corrupt); FULL waits. Locks are waited for LOCK_TIMEOUT_MS at most.
            kwargs["connect_args"] = {"options": " ".join((
                f"-c synchronous_commit={'off' if synchronous == 'NORMAL' else 'on'}",
                f"-c lock_timeout={LOCK_TIMEOUT_MS}"))}
            kwargs["pool_pre_ping"] = True  # connections outside the hot path (migrations)
        try:
            self.engine: Engine = create_engine(url, **kwargs)
        except SQLAlchemyError as e:
            raise StorageError(f"cannot open database: {e}") from e
        if not self.postgres:
            _sqlite_setup(self.engine, synchronous)
        self.migrate(revision)

    def migrate(self, revision: str = _migrate.HEAD) -> int:
        """Bring the schema up to ``revision`` (Alembic, ``_migrate``); returns the
        version found (0: empty). Runs at every start, in one transaction."""
        try:
            with self._connect(write=True) as conn, conn.begin():
                return _migrate.revision_number(_migrate.upgrade(conn, revision))
        except MigrationError as e:
            raise StorageError(f"cannot migrate the database: {e}") from e
        except _DB_ERRORS as e:
            raise StorageError(f"cannot migrate the database: {e.__class__.__name__}: "
                               + str(e).splitlines()[0]) from e

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
        """A transaction on a pooled connection, without SQLAlchemy's
        Connection/Transaction layer (most of the per-call CPU on the hot path)."""
        lock = self._write_lock if write else None
        if lock is not None:
            lock.acquire()
        start = time.perf_counter()
        try:
            with (self._postgres_txn if self.postgres else self._sqlite_txn)(write) as txn:
                yield txn
        except _CONFLICTS as e:
            raise Conflict(str(e.__class__.__name__) + ": " + str(e).splitlines()[0]) from e
        except _DB_ERRORS as e:
            text = (str(e).splitlines() or [""])[0]
            raise _classify(e)(f"{e.__class__.__name__}: {text}") from e
        finally:
            _SECONDS[write].observe(time.perf_counter() - start)
            if lock is not None:
                lock.release()

    @contextmanager
    def _sqlite_txn(self, write: bool) -> Iterator[_SqlTxn]:
        try:
            raw = self._idle.pop()
        except IndexError:
            raw = self.engine.raw_connection()
        reusable = True
        try:
            cursor = raw.cursor()
            cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")  # autocommit driver
            yield _SqlTxn(cursor, self._sealer, self._table_sql)
            raw.commit()
        except BaseException:
            try:
                raw.rollback()
            except _DB_ERRORS:
                reusable = False
            raise
        finally:
            if reusable and len(self._idle) < self._idle_cap:
                self._idle.append(raw)
            else:
                raw.close()

    @contextmanager
    def _postgres_txn(self, write: bool) -> Iterator[_SqlTxn]:
        """A PostgreSQL transaction on a connection kept in pipeline mode: a write
        costs one round trip for BEGIN, every write and COMMIT, plus one per read;
        a read runs in autocommit (under READ COMMITTED every statement has its
        own snapshot anyway), one round trip per read."""
        try:
            conn = self._idle.pop()
        except IndexError:
            # Opening one blocks (connect, or a wait for the pool): not on the loop.
            raw = cast(Any, _suspend.blocking(self.engine.raw_connection))
            raw.driver_connection.autocommit = True  # transactions are ours
            conn = _PgConnection(raw)
        reusable = True
        txn = None
        try:
            txn = _SqlTxn(None, self._sealer, self._table_sql, pipe=conn.pipe, write=write)
            yield txn
            txn.commit()
        except BaseException as e:
            reusable = not isinstance(e, _BROKEN) and conn.pipe.recover()
            meaning = None if txn is None else txn.meaning(e)
            if meaning is not None:
                raise meaning from e
            raise
        finally:
            if not reusable:
                # The server may have restarted: the next transactions open new ones.
                conn.close()
                self._close_idle()
            elif len(self._idle) >= self._idle_cap:
                conn.close()
            else:
                self._idle.append(conn)

    def _close_idle(self) -> None:
        while self._idle:
            conn = self._idle.pop()
            if isinstance(conn, _PgConnection):
                conn.close()
            else:
                _close_quietly(conn)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn(*args, **kwargs)`` (which uses this database) from the RPC event loop.

        With the embedded SQLite it runs right here: a few statements take
        microseconds. With PostgreSQL every statement is a network round trip:
        ``fn`` runs in a greenlet on the loop's thread (``confide._suspend``),
        parked while it waits for the server, and the loop serves other RPCs
        meanwhile. No thread hand-off: threads cost a futex wake-up and a GIL
        fight per hop, most of the server's CPU per task when measured.
        """
        if not self.postgres:
            return fn(*args, **kwargs)
        return await _suspend.run(fn, *args, **kwargs)

    # -- wake-ups between processes (``_channels``) --------------------------
    def notify(self, channel: str, payload: str = "") -> None:
        """Wake every listener of ``channel``, in any process on this database
        (PostgreSQL ``NOTIFY``; in-process on SQLite). A hint, not a fact:
        listeners re-read the sealed rows. ``StorageError`` if it cannot be sent."""
        name, payload = check_channel(channel), check_payload(payload)
        if not self.postgres:
            self._local.notify(name, payload)
            return
        with self._txn(False) as txn:
            assert isinstance(txn, _SqlTxn)
            txn._send("SELECT pg_notify(%s, %s)", (name, payload))

    def listen(self, channel: str, callback: Callable[[str], None]) -> Listener:
        """Call ``callback(payload)`` on every notification of ``channel`` (on a
        thread of its own with PostgreSQL), and once with ``""`` each time it
        (re)connects, since notifications sent meanwhile are lost."""
        name = check_channel(channel)
        if not self.postgres:
            return self._local.listen(name, callback)
        listener = PostgresListener(self._listen_connection, name, callback)
        self._listeners.append(listener)

        def close() -> None:
            listener.close()
            if listener in self._listeners:
                self._listeners.remove(listener)

        return Listener(close)

    def _listen_connection(self) -> Any:
        """A connection of its own for LISTEN (never pooled: it stays subscribed)."""
        import psycopg

        url = self.engine.url.set(drivername="postgresql")
        return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)

    def read(self) -> AbstractContextManager[Txn]:
        """A read-only transaction: ``with db.read() as txn: ...``."""
        return self._txn(False)

    def write(self) -> AbstractContextManager[Txn]:
        """A read-write transaction, committed when the block ends without an error
        and rolled back otherwise; serialised with other writers on SQLite."""
        return self._txn(True)

    # -- the keyring row and re-sealing (confide.keys, docs/security.md) -----------
    def server_time(self) -> float | None:
        """The PostgreSQL server's clock (Unix seconds, ``clock_timestamp()``); None on
        SQLite, whose clock is this host's."""
        if not self.postgres:
            return None
        with self._txn(False) as txn:
            assert isinstance(txn, _SqlTxn)
            raw = txn._execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
        return float(raw[0])

    def read_meta(self, key: str) -> bytes | None:
        """The value of ``meta`` row ``key`` (unauthenticated: the caller checks it)."""
        mark = "%s" if self.postgres else "?"
        with self._txn(False) as txn:
            assert isinstance(txn, _SqlTxn)
            raw = txn._execute(f"SELECT value FROM meta WHERE key = {mark}", (key,)).fetchone()
        return None if raw is None else bytes(raw[0])

    def swap_meta(self, key: str, expected: bytes | None, value: bytes) -> bool:
        """Set ``meta`` row ``key`` to ``value`` if it still holds ``expected``
        (``None``: absent); ``False`` when another writer changed it first."""
        mark = "%s" if self.postgres else "?"
        try:
            with self._txn(True) as txn:
                assert isinstance(txn, _SqlTxn)
                lock = " FOR UPDATE" if self.postgres else ""
                raw = txn._execute(f"SELECT value FROM meta WHERE key = {mark}{lock}",
                                   (key,)).fetchone()
                current = None if raw is None else bytes(raw[0])
                if current != expected:
                    return False
                if current is None:
                    txn._execute(f"INSERT INTO meta (key, value) VALUES ({mark}, {mark})",
                                 (key, value))
                else:
                    txn._execute(f"UPDATE meta SET value = {mark} WHERE key = {mark}",
                                 (value, key))
        except Conflict:
            return False
        return True

    @property
    def sealed_tables(self) -> list[str]:
        """The tables whose rows are sealed (every one but ``meta``)."""
        return [name for name, sql in self._table_sql.items() if "body" in sql.columns]

    def _prefix_sql(self, n: int) -> str:
        return f"substring(body from 1 for {n})" if self.postgres else f"substr(body, 1, {n})"

    def count_by_key(self, table: str) -> dict[int, int]:
        """Rows of ``table`` per record-key version (from row headers, unauthenticated)."""
        sql = self._table_sql[table]
        header = (f"CASE WHEN {self._prefix_sql(1)} = {sql.mark} THEN {self._prefix_sql(5)} "
                  f"ELSE {self._prefix_sql(1)} END")
        statement = f"SELECT {header}, COUNT(*) FROM {sql.name} GROUP BY 1"
        counts: dict[int, int] = {}
        with self._txn(False) as txn:
            assert isinstance(txn, _SqlTxn)
            for prefix, n in txn._execute(statement, (row_prefix(1)[:1],)).fetchall():
                version = RecordSealer.version_of(bytes(prefix) + bytes(33))
                key = -1 if version is None else version
                counts[key] = counts.get(key, 0) + int(n)
        return counts

    def reseal_batch(self, table: str, *, after: str | None, limit: int) -> ResealBatch:
        """Re-seal, under the active record key, up to ``limit`` rows of ``table``
        sealed by another, in primary-key order after ``after``; one transaction.

        Each row is opened (so a tampered row stops the reseal) and written
        back with its columns unchanged. Rows already under the active key are
        skipped by the query, so running again after an interruption only does
        what is left.
        """
        sql = self._table_sql[table]
        if "body" not in sql.columns:
            raise StorageError(f"{table} has no sealed rows")
        mark = sql.mark
        with self._txn(True) as txn:
            assert isinstance(txn, _SqlTxn)
            active = self._sealer.active_version()
            clauses = [f"{self._prefix_sql(5)} <> {mark}"]
            params: list[Any] = [row_prefix(active)]
            if after is not None:
                clauses.append(f"{sql.pk} > {mark}")
                params.append(sql.key(after))
            statement = (f"{sql.select} WHERE {' AND '.join(clauses)} ORDER BY {sql.pk} "
                         f"LIMIT {int(limit)}" + (" FOR UPDATE" if self.postgres else ""))
            rows = [txn._row(sql, raw) for raw in txn._execute(statement, params).fetchall()]
            for row in rows:
                txn.update(table, row.id, row.body, **row.columns)
        return ResealBatch(rows[-1].id if len(rows) == limit else None, len(rows))

    def close(self) -> None:
        for listener in list(self._listeners):
            listener.close()
        self._listeners.clear()
        self._close_idle()
        self.engine.dispose()
