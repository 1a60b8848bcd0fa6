"""Durable storage behind one interface: SQLite by default, PostgreSQL to scale out.

The database is untrusted: every row is sealed and authenticated (see ``_schema``).
"""

from ._db import Conflict, Database, StorageError, Tampered
from ._schema import SCHEMA_VERSION
from ._txn import Column, Record, Row, Txn

__all__ = ["SCHEMA_VERSION", "Column", "Conflict", "Database", "Record", "Row", "StorageError",
           "Tampered", "Txn"]
