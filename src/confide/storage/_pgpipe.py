"""PostgreSQL statements on libpq's pipeline, without a driver cursor per statement.

The hot path sends a handful of small statements per transaction. Through
psycopg's cursors each one cost a generator round, a ``poll`` and a GIL
hand-off even in pipeline mode, and with dozens of RPCs in flight those
hand-offs, not the database, set the server's CPU per task. Here a statement
is one ``send_query_prepared`` call on psycopg's libpq wrapper (``psycopg.pq``,
its public low-level API): libpq buffers it, and the caller waits for the
server only when a result is read or the transaction commits. A caller on the
event loop (``confide._suspend``) parks its greenlet on the socket meanwhile;
a thread polls it.

* A statement is prepared on its connection the first time it is sent (a
  bounded cache per connection; beyond it, statements go unnamed).
* Parameters: ``bytes`` in binary (``bytea``), ``int``/``bool``/``str`` as text
  with their type left to the server, ``None`` as NULL. Results come in binary
  and are decoded by column type (:data:`_DECODERS`: the types of ``_schema``
  and the few expressions the storage layer reads).
* Errors carry their SQLSTATE (psycopg's exception classes, built from the
  result), so callers classify them as before. After an error every later
  statement up to the next sync is skipped by the server; the first error is
  raised by whoever waits next.

Outside an explicit transaction (``BEGIN`` sent by the caller), each read
ends with a sync: the statements since the last sync ran as one implicit
transaction, committed there.
"""

from __future__ import annotations

import itertools
import re
import select
import struct
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Final

from psycopg import OperationalError, errors
from psycopg.pq import ExecStatus, TransactionStatus

from .._suspend import suspendable, wait_socket

__all__ = ["Pipe", "PipeResult"]

#: Prepared statements kept per connection; later new ones are sent unnamed.
MAX_PREPARED: Final = 256
_BINARY: Final = 1
_TEXT: Final = 0
_BYTEA_OID: Final = 17
_MARK = re.compile(r"%s")
#: Statement names, unique in the process: a connection given back to the pool
#: may come back to another pipe with its statements still prepared.
_NAMES = itertools.count()


def _int8(v: bytes) -> int:
    return int.from_bytes(v, "big", signed=True)


def _text(v: bytes) -> str:
    return v.decode()


#: Binary result decoders by type OID.
_DECODERS: Final[dict[int, Callable[[bytes], Any]]] = {
    16: lambda v: v == b"\x01",  # bool
    17: bytes,  # bytea
    20: _int8, 21: _int8, 23: _int8,  # int8, int2, int4
    25: _text, 1043: _text, 1042: _text, 19: _text,  # text, varchar, bpchar, name
    700: lambda v: struct.unpack("!f", v)[0], 701: lambda v: struct.unpack("!d", v)[0],
    2278: lambda v: None,  # void (pg_notify)
}


def _numbered(statement: str) -> bytes:
    """``%s`` placeholders as libpq's ``$1, $2, …``."""
    n = iter(range(1, 1 << 16))
    return _MARK.sub(lambda _m: f"${next(n)}", statement).encode()


def _decode(res: Any) -> list[tuple[Any, ...]]:
    """The rows of a PGresult in binary format, as Python values."""
    if res is None or not res.ntuples:
        return []
    decoders = [_DECODERS.get(res.ftype(c)) for c in range(res.nfields)]
    if None in decoders:
        raise errors.NotSupportedError(
            f"column type oid {res.ftype(decoders.index(None))} is not decoded")
    get = res.get_value
    return [tuple(None if (v := get(r, c)) is None else d(v)  # type: ignore[misc]
                  for c, d in enumerate(decoders))
            for r in range(res.ntuples)]


class PipeResult:
    """The rows of one statement, read when asked for (a cursor's two methods)."""

    __slots__ = ("_pipe", "_rows", "done", "error", "result")

    def __init__(self, pipe: Pipe) -> None:
        self._pipe = pipe
        self.done = False
        self.error: BaseException | None = None
        self.result: Any = None  # libpq's PGresult, decoded when first read
        self._rows: list[tuple[Any, ...]] | None = None

    def fetchall(self) -> list[tuple[Any, ...]]:
        if self._rows is None:
            self._pipe.collect(self)
            self._rows = _decode(self.result)
            self.result = None
        return self._rows

    def fetchone(self) -> tuple[Any, ...] | None:
        rows = self.fetchall()
        return rows[0] if rows else None


class _Prepare:
    """The server's answer to a prepare: the name is usable only if it succeeded."""

    __slots__ = ("key",)

    def __init__(self, key: tuple[str, tuple[int, ...]]) -> None:
        self.key = key


class _Sync:
    __slots__ = ()


_SYNC: Final = _Sync()


class Pipe:
    """One connection in pipeline mode, used by one caller (thread or greenlet) at a time.

    ``conn`` is a psycopg connection in autocommit mode (psycopg made it
    non-blocking); its ``pgconn`` is driven here until :meth:`release`.
    """

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self._pg = conn.pgconn
        self._pg.enter_pipeline_mode()
        self._poll = select.poll()
        self._fd = self._pg.socket
        self._queue: deque[PipeResult | _Prepare | _Sync] = deque()
        self._prepared: dict[tuple[str, tuple[int, ...]], bytes] = {}
        self._numbered: dict[str, bytes] = {}
        self._unflushed = False  # statements sent since the last sync or flush request
        self._failed: BaseException | None = None  # the first error since the last sync
        self.explicit = False  # inside BEGIN … COMMIT (reads wait by flush, not by sync)

    # -- sending ------------------------------------------------------------
    def send(self, statement: str, params: Sequence[Any] = ()) -> PipeResult:
        """Queue ``statement`` (``%s`` placeholders) with ``params``; nothing is awaited."""
        types: list[int] = []
        values: list[bytes | None] = []
        formats: list[int] = []
        for p in params:
            if isinstance(p, bytes | bytearray | memoryview):
                types.append(_BYTEA_OID)
                values.append(bytes(p))
                formats.append(_BINARY)
            else:
                types.append(0)
                formats.append(_TEXT)
                if p is None:
                    values.append(None)
                elif isinstance(p, bool):
                    values.append(b"t" if p else b"f")
                elif isinstance(p, int | str):
                    values.append(str(p).encode())
                else:
                    raise TypeError(f"cannot send a {type(p).__name__} to PostgreSQL")
        sql = self._numbered.get(statement)
        if sql is None:
            sql = _numbered(statement)
            if len(self._numbered) < MAX_PREPARED * 4:
                self._numbered[statement] = sql
        key = (statement, tuple(types))
        name = self._prepared.get(key)
        if name is None and len(self._prepared) < MAX_PREPARED:
            name = f"confide_{next(_NAMES)}".encode()
            self._pg.send_prepare(name, sql, types)
            self._prepared[key] = name
            self._queue.append(_Prepare(key))
        if name is None:
            self._pg.send_query_params(sql, values, types, formats, _BINARY)
        else:
            self._pg.send_query_prepared(name, values, formats, _BINARY)
        result = PipeResult(self)
        self._queue.append(result)
        self._unflushed = True
        return result

    def run(self, statement: str, params: Sequence[Any] = ()) -> PipeResult:
        """Send ``statement`` and wait for its rows."""
        result = self.send(statement, params)
        self.collect(result)
        return result

    def sync(self) -> None:
        """End the pipeline's segment and wait for everything in it; raise its
        first error (the server skipped every statement after it)."""
        self._pg.pipeline_sync()
        self._queue.append(_SYNC)
        self._unflushed = False
        self.drain()

    def drain(self) -> None:
        """Wait for everything queued (up to a sync already sent); raise the first error."""
        while self._queue:
            self._take()
        failed, self._failed = self._failed, None
        if failed is not None:
            raise failed

    def finish(self) -> None:
        """The end of a read: wait for what is in flight, syncing only if something
        was sent since the last sync."""
        if self._unflushed:
            self.sync()
        else:
            self.drain()

    # -- receiving ----------------------------------------------------------
    def collect(self, result: PipeResult) -> None:
        """Wait until ``result`` is in; raise its error or the first before it."""
        if not result.done:
            if self._unflushed:
                if self.explicit:
                    self._pg.send_flush_request()
                else:
                    self._pg.pipeline_sync()
                    self._queue.append(_SYNC)
                self._unflushed = False
            while not result.done:
                self._take()
        if result.error is not None:
            raise result.error

    def _take(self) -> None:
        """Read the server's answer to the oldest queued item."""
        item = self._queue.popleft()
        res = self._next()
        if isinstance(item, _Sync):
            if res is None or res.status != ExecStatus.PIPELINE_SYNC:
                raise OperationalError("PostgreSQL pipeline out of step: expected a sync")
            return
        last = res  # a statement's results end with a None
        while res is not None:
            last, res = res, self._next()
        status = None if last is None else last.status
        error: BaseException | None = None
        if last is None:
            error = OperationalError("PostgreSQL pipeline out of step: no result")
        elif status == ExecStatus.FATAL_ERROR:
            error = errors.error_from_result(last)
        elif status == ExecStatus.PIPELINE_ABORTED:
            error = self._failed or OperationalError("statement skipped after an error")
        elif status not in (ExecStatus.COMMAND_OK, ExecStatus.TUPLES_OK):
            error = OperationalError(f"unexpected PostgreSQL result {status!r}")
        if error is not None and self._failed is None:
            self._failed = error
        if isinstance(item, _Prepare):
            if error is not None:
                self._prepared.pop(item.key, None)
            return
        item.done = True
        item.error = None if error is None else self._failed
        item.result = last

    def _next(self) -> Any:
        """libpq's next result, waiting for the socket while it is busy."""
        pg = self._pg
        self._flush()
        while pg.is_busy():
            self._wait(select.POLLIN)
            pg.consume_input()
        return pg.get_result()

    def _flush(self) -> None:
        pg = self._pg
        while pg.flush() == 1:  # non-blocking: more to send; read meanwhile (no deadlock)
            if self._wait(select.POLLIN | select.POLLOUT) & select.POLLIN:
                pg.consume_input()

    def _wait(self, events: int) -> int:
        if suspendable():  # on the event loop (``_suspend``): park until the socket is ready
            readable, writable = wait_socket(self._fd, write=bool(events & select.POLLOUT))
            return (select.POLLIN if readable else 0) | (select.POLLOUT if writable else 0)
        self._poll.register(self._fd, events)
        try:
            while True:
                ready = self._poll.poll()
                if ready:
                    revents = ready[0][1]
                    if revents & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
                        # let libpq read what is there and report the failure
                        return revents | select.POLLIN
                    return revents
        finally:
            self._poll.unregister(self._fd)

    # -- after a failure, and giving the connection back ---------------------
    def recover(self) -> bool:
        """After a failed transaction: drain, roll back; whether the connection is usable."""
        try:
            try:  # a sync ends the server's skipping after an error, and tells the state
                self.sync()
            except errors.Error:
                pass
            self.explicit = False
            if self._pg.transaction_status != TransactionStatus.IDLE:
                self.send("ROLLBACK")
                self.sync()
            return bool(self._pg.transaction_status == TransactionStatus.IDLE)
        except (errors.Error, OSError):
            return False

    def release(self) -> bool:
        """Forget this pipe's prepared statements and leave pipeline mode (the
        connection is psycopg's again); whether that worked."""
        try:
            if self._prepared and self._pg.transaction_status == TransactionStatus.IDLE:
                self._pg.send_query_params(b"DEALLOCATE ALL", None)
                self._queue.append(PipeResult(self))
                self.sync()
            self._pg.exit_pipeline_mode()
        except (errors.Error, OSError):
            return False
        return True
