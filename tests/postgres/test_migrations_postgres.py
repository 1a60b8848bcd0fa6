"""Schema migrations on PostgreSQL (issue 13 item 6): the same upgrade from v1
with data, the downgrade/upgrade round trip, and the head matching the code's tables."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, MetaData, create_engine, inspect, text

from confide.storage._schema import metadata

from ..unit._migration_support import check_round_trip, check_upgrade_from_v1, open_db


def _shape(engine: Engine) -> dict[str, object]:
    insp = inspect(engine)
    return {t: ([(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(t)],
                insp.get_pk_constraint(t)["constrained_columns"],
                sorted((str(i["name"]).replace("ix_code_", "ix_"), tuple(i["column_names"]))
                       for i in insp.get_indexes(t)))
            for t in insp.get_table_names() if t != "alembic_version"}


@pytest.mark.parametrize("pre_alembic", [False, True], ids=["stamped", "pre-alembic"])
def test_a_v1_database_with_data_upgrades_with_every_record_intact(
        pg_url: str, pre_alembic: bool) -> None:
    check_upgrade_from_v1(pg_url, pre_alembic=pre_alembic)


def test_downgrade_then_upgrade_round_trips_with_data(pg_url: str) -> None:
    check_round_trip(pg_url)


def test_head_builds_exactly_the_tables_the_code_uses(pg_url: str) -> None:
    open_db(pg_url).close()
    engine = create_engine(pg_url)
    migrated = _shape(engine)
    with engine.begin() as c:
        c.execute(text("CREATE SCHEMA code"))
    coded = MetaData(schema="code")
    for table in metadata.sorted_tables:
        table.to_metadata(coded)
    coded.create_all(engine)
    # (index names of a schema-qualified table carry the schema: "ix_code_…")
    insp_engine = create_engine(pg_url, connect_args={"options": "-csearch_path=code"})
    assert _shape(insp_engine) == migrated
    insp_engine.dispose()
    engine.dispose()
