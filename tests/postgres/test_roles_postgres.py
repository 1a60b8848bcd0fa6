"""The revocation table's migration (0004) on PostgreSQL."""

from __future__ import annotations

from ..unit.test_roles import check_revocation_migration


def test_migration_0004_adds_and_drops_the_revocation_table(pg_url: str) -> None:
    check_revocation_migration(pg_url)
