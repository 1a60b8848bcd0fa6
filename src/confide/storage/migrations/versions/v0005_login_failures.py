"""``login_failures``: failed logins shared by every authentication replica.

One sealed row per throttled user id or address, keyed by a keyed hash
(services/authentication/_shared_failures.py), so the counts and locks of the
login throttle hold across replicas and restarts. New and empty on upgrade;
the downgrade forgets the counts (each process then counts on its own again).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from confide.storage.migrations._marker import set_schema_version

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("scope", sa.Integer, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_login_failures_expires_at", "login_failures", ["expires_at"])
    set_schema_version(5)


def downgrade() -> None:
    op.drop_index("ix_login_failures_expires_at", table_name="login_failures")
    op.drop_table("login_failures")
    set_schema_version(4)
