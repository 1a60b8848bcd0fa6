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

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def _marker(version: int) -> None:
    op.execute(sa.text("UPDATE meta SET value = :v WHERE key = 'schema_version'")
               .bindparams(sa.bindparam("v", str(version).encode(), type_=sa.LargeBinary)))


def upgrade() -> None:
    op.create_table(
        "revoked_nodes",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    _marker(4)


def downgrade() -> None:
    op.drop_table("revoked_nodes")
    _marker(3)
