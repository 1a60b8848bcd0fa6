"""``idempotency``: the creates' idempotency keys (services/_idempotency.py).

New and empty on upgrade; the downgrade drops it (retries of creates made
before then are no longer recognised: at worst a duplicate, as before).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from confide.storage.migrations._marker import set_schema_version

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_idempotency_created_at", "idempotency", ["created_at"])
    set_schema_version(3)


def downgrade() -> None:
    op.drop_index("ix_idempotency_created_at", table_name="idempotency")
    op.drop_table("idempotency")
    set_schema_version(2)
