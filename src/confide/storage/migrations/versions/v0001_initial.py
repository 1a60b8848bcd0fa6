"""The first schema (the hand-written migrations' v1): every table but ``user_names``.

Frozen: this is what the previous release's ``metadata.create_all`` created,
same names, types and indexes, so databases it made are adopted as they are.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

#: The hand-written mechanism's marker, kept in step so that a release before
#: Alembic still opens a database downgraded back to its schema.
_MARKER = "schema_version"


def _indexed(table: str, *columns: str) -> None:
    for column in columns:
        op.create_index(f"ix_{table}_{column}", table, [column])


def upgrade() -> None:
    meta = op.create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(512), primary_key=True),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "functions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("owner", sa.String(512), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    _indexed("functions", "seq", "owner")
    op.create_table(
        "files",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    _indexed("tasks", "seq", "status")
    op.create_table(
        "queue",
        sa.Column("task_id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("leased_by", sa.String(128), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    _indexed("queue", "seq", "leased_by")
    op.create_table(
        "audit",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    op.bulk_insert(meta, [{"key": _MARKER, "value": b"1"}])


def downgrade() -> None:
    """Back to an empty database: every record is lost (``confide db downgrade
    base`` asks for ``--yes``)."""
    for table in ("audit", "queue", "tasks", "files", "functions", "users", "meta"):
        op.drop_table(table)
