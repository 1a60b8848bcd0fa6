"""Durable storage behind one interface: SQLite by default, PostgreSQL to scale out.

The database is untrusted: every row is sealed and authenticated (see ``_schema``).
"""

from ._channels import Listener
from ._db import (
    Conflict,
    Database,
    ResealBatch,
    Schema,
    Stale,
    StorageError,
    StorageFull,
    StorageUnavailable,
    Tampered,
)
from ._migrate import BASE, HEAD, Revision, history
from ._schema import SCHEMA_VERSION
from ._txn import Column, Get, Record, Row, Txn

__all__ = ["BASE", "HEAD", "SCHEMA_VERSION", "Column", "Conflict", "Database", "Get", "Listener",
           "Record", "ResealBatch", "Revision", "Row", "Schema", "Stale", "StorageError",
           "StorageFull", "StorageUnavailable", "Tampered", "Txn", "history"]
