"""The ``meta.schema_version`` marker every revision keeps in step, so that a release from
before Alembic still opens a database downgraded back to its schema (docs/operations.md)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

__all__ = ["set_schema_version"]


def set_schema_version(version: int) -> None:
    op.execute(sa.text("UPDATE meta SET value = :v WHERE key = 'schema_version'")
               .bindparams(sa.bindparam("v", str(version).encode(), type_=sa.LargeBinary)))
