"""``user_names``: one row per case-insensitive user name (the v2 of the hand-written
migrations). The authentication service fills it at every start
(``index_user_names``), so the upgrade leaves it empty and the downgrade loses
nothing that is not rebuilt.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from confide.storage.migrations._marker import set_schema_version

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "user_names",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    set_schema_version(2)


def downgrade() -> None:
    op.drop_table("user_names")
    set_schema_version(1)
