"""Alembic's entry point for confide: migrations run on the connection given.

``confide.storage._migrate`` opens the transaction (and, on PostgreSQL, takes
an advisory lock so that nodes starting together migrate one at a time) and
passes its connection in ``config.attributes["connection"]``; every revision
then runs inside that one transaction: all applied or none.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from confide.storage._schema import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("confide's migrations run through confide (`confide db upgrade`), "
                       "with a connection in config.attributes['connection']")
context.configure(connection=connection, target_metadata=metadata, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
