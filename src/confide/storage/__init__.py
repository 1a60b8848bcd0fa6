"""Durable storage behind one interface: SQLite by default, PostgreSQL to scale out.

The database is untrusted: every row is sealed and authenticated (see ``_schema``).
"""

from ._db import Conflict, Database, Row, StorageError, Tampered, Txn
from ._schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "Conflict", "Database", "Row", "StorageError", "Tampered", "Txn"]
