"""``revoked_nodes``: nodes (or whole hosts, by name prefix) the operator revoked.

One sealed row per revoked node id; the key service refuses their enrolment and
the internal servers refuse their calls (``confide node revoke``). The upgrade
starts with no node revoked; the downgrade forgets the revocations (which the
earlier schema could not enforce).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from confide.storage.migrations._marker import set_schema_version

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "revoked_nodes",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    set_schema_version(4)


def downgrade() -> None:
    op.drop_table("revoked_nodes")
    set_schema_version(3)
