"""The storage seam: what a service sees of a database transaction.

A service opens a transaction with ``Database.read()`` or ``Database.write()``
(context managers of a :class:`Txn`) and reads and writes *records* by table
and id; it never sees SQL, connections or seals. :class:`Txn` is a protocol, so
the services' transaction code is type-checked against it and a test (or
another backend) can stand in for the SQL one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Column", "Get", "Record", "Row", "Txn"]

#: A record's body: the plain dict that is CBOR-encoded and sealed. The named
#: record types of the services convert from and to it.
Record = dict[str, Any]

#: The value of a plain (indexed, authenticated, not secret) column: the
#: schema's plain columns are texts and integers (``storage._schema``).
Column = str | int


@dataclass
class Row:
    """One row as read: its id, its plain columns and its opened body."""

    id: str
    columns: dict[str, Column]
    body: Record
    #: The sealed body as stored: opaque to services, for :meth:`Txn.check_newest`.
    seal: bytes | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Get:
    """One row to read with :meth:`Txn.get_many` (``lock``: as :meth:`Txn.get`)."""

    table: str
    row_id: str
    lock: bool = False


class Txn(Protocol):
    """One database transaction. Obtain it from ``Database.read`` / ``write``.

    Every row read is authenticated (table, id, plain columns and body); a row
    that fails raises ``Tampered``. Database failures raise ``StorageError``.
    """

    def get(self, table: str, row_id: str, *, lock: bool = False) -> Row | None:
        """The row ``row_id`` of ``table``, or None; ``lock`` holds it until the end."""
        ...

    def get_many(self, *gets: Get) -> list[Row | None]:
        """:meth:`get` of each, in order; on PostgreSQL all in one round trip."""
        ...

    def insert(self, table: str, row_id: str, body: Record, **cols: Column) -> Row:
        """Add a row; ``cols`` must be exactly the table's plain columns.

        A row whose key exists already makes the transaction fail with
        ``Conflict`` (raised when it ends, or at once). Returns the row as
        written (with its seal)."""
        ...

    def check_newest(self, table: str, row: Row, order_by: str) -> None:
        """Fail the transaction with ``Stale`` (raised when it ends, or at once)
        unless ``row`` (read or written earlier, with its seal) is still the row
        of ``table`` with the largest ``order_by``, byte for byte.

        Checked by the database on PostgreSQL (no round trip of its own): a
        writer that knows what it wrote last need not read it back."""
        ...

    def update(self, table: str, row_id: str, body: Record, **cols: Column) -> None:
        """Replace an existing row (``StorageError`` when there is none)."""
        ...

    def delete(self, table: str, row_id: str) -> None:
        """Remove a row if it exists."""
        ...

    def delete_below(self, table: str, column: str, bound: int) -> None:
        """Remove every row whose plain integer ``column`` is below ``bound``.

        Decided by the database on the plain column, without opening a row: for
        purging what is stale anyway, where a row removed by a forged column
        costs no more than the database's owner deleting it (which nothing can
        prevent). Sent without waiting (pipelined) on PostgreSQL.
        """
        ...

    def delete_beyond(self, table: str, order_by: str, keep: int,
                      where: Mapping[str, Column] | None = None) -> None:
        """Remove the rows (whose plain columns equal ``where``) beyond the
        ``keep`` with the largest plain integer ``order_by`` (rows tied with
        the first one beyond go too: at most ``keep`` stay). One statement,
        decided by the database on plain columns like :meth:`delete_below`:
        for bounding a table of what may be forgotten. Sent without waiting
        (pipelined) on PostgreSQL.
        """
        ...

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
        """Rows whose plain columns equal ``where`` and differ from ``exclude``.

        ``lock`` skips rows another transaction holds (PostgreSQL) and locks
        the rest until the end.
        """
        ...

    def unverified_ids(self, table: str) -> list[str]:
        """Every primary key of ``table``, read without opening a body.

        Unauthenticated (the database is untrusted): only for maintenance that
        stays correct whatever the ids are, such as indexing existing rows.
        """
        ...

    def count_by(self, table: str, column: str) -> dict[Any, int]:
        """Row counts per value of a plain ``column``.

        Unauthenticated (the database is untrusted): for metrics only.
        """
        ...

    def serialize(self, name: str) -> None:
        """Hold a named lock until the transaction ends, across every node."""
        ...

    def next_seq(self, table: str, column: str = "seq") -> int:
        """One more than the largest ``column`` of ``table`` (1 for an empty table)."""
        ...
