"""Tables: what the code reads and writes (the migrations in ``migrations/`` build them).

Every table keeps its secrets and its integrity in ``body``: a row sealed by
:class:`confide.crypto.records.RecordSealer` whose associated data covers the
table name, the row id and every other column, so a changed column is refused
as tampered. Plain columns exist only to index and order rows.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
)

__all__ = ["SCHEMA_VERSION", "metadata", "tables"]

metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(512), primary_key=True),
    Column("body", LargeBinary, nullable=False),
)

# One row per case-insensitive user name (services/_names.name_key, a SHA-256
# hex digest): its primary key makes "ADMIN beside admin" impossible even for
# concurrent registrations. The body lists the user ids with that key (more
# than one only for users created before the rule).
user_names = Table(
    "user_names",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("body", LargeBinary, nullable=False),
)

functions = Table(
    "functions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False, index=True),
    Column("owner", String(512), nullable=False, index=True),
    Column("body", LargeBinary, nullable=False),
)

files = Table(
    "files",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("body", LargeBinary, nullable=False),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False, index=True),
    Column("status", Integer, nullable=False, index=True),
    Column("body", LargeBinary, nullable=False),
)

# Staged tasks waiting for (or leased to) an executor. ``leased_by`` is empty
# while queued.
queue = Table(
    "queue",
    metadata,
    Column("task_id", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False, index=True),
    Column("leased_by", String(128), nullable=False, index=True),
    Column("body", LargeBinary, nullable=False),
)

# A create's idempotency key (services/_idempotency.py): the row id is a digest of
# user and key; ``created_at`` orders the purge of expired keys.
idempotency = Table(
    "idempotency",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("created_at", BigInteger, nullable=False, index=True),
    Column("body", LargeBinary, nullable=False),
)

# Revoked node ids (``confide node revoke``): an id also covers ``<id>/…``, the
# executors of a worker host. The body is sealed like every other row.
revoked_nodes = Table(
    "revoked_nodes",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("body", LargeBinary, nullable=False),
)

# Failed logins per user id or address, shared by every authentication replica
# (services/authentication/_shared_failures.py). The row id is a keyed hash of
# the scope and the key (the database never learns a user id or an address);
# ``scope`` (0 user id, 1 address) and ``expires_at`` (Unix seconds when the
# failures are forgotten) let one statement purge and bound each scope.
login_failures = Table(
    "login_failures",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("scope", Integer, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
    Column("body", LargeBinary, nullable=False),
)

audit = Table(
    "audit",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("body", LargeBinary, nullable=False),
)

tables: dict[str, Table] = {t.name: t for t in metadata.sorted_tables}

#: The number of the head migration (``migrations/versions``), which builds
#: exactly these tables (tests/unit/test_migrations.py compares them).
SCHEMA_VERSION = 5
