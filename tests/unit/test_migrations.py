"""Schema migrations (Alembic, issue 13 item 6): a database of the previous
schema, with sealed rows in it, upgrades with every record intact; downgrades
lose nothing the head rebuilds; the migrations build exactly the tables the
code uses; and what cannot be migrated is refused, leaving the schema as it was."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    inspect,
)
from typer.testing import CliRunner

from confide.cli import _app
from confide.storage import SCHEMA_VERSION, Schema, StorageError, history
from confide.storage._schema import metadata

from ._migration_support import HEAD, check_round_trip, check_upgrade_from_v1, open_db


def _url(tmp_path: Path, name: str = "confide.db") -> str:
    return f"sqlite:///{tmp_path / name}"


def _ddl(path: Path) -> set[tuple[str, str, str]]:
    """Every table's and index's DDL as SQLite keeps it, but Alembic's own table."""
    with sqlite3.connect(path) as c:
        rows = c.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL "
                         "AND name <> 'alembic_version'").fetchall()
    return {(t, n, " ".join(s.split())) for t, n, s in rows}


def _previous_release_v1() -> MetaData:
    """The tables of the release before Alembic at schema v1, frozen as it wrote them
    (``storage/_schema.py`` of commit 611323c)."""
    m = MetaData()
    Table("meta", m, Column("key", String(64), primary_key=True),
          Column("value", LargeBinary, nullable=False))
    Table("users", m, Column("id", String(512), primary_key=True),
          Column("body", LargeBinary, nullable=False))
    Table("functions", m, Column("id", String(64), primary_key=True),
          Column("seq", BigInteger, nullable=False, index=True),
          Column("owner", String(512), nullable=False, index=True),
          Column("body", LargeBinary, nullable=False))
    Table("files", m, Column("id", String(64), primary_key=True),
          Column("body", LargeBinary, nullable=False))
    Table("tasks", m, Column("id", String(64), primary_key=True),
          Column("seq", BigInteger, nullable=False, index=True),
          Column("status", Integer, nullable=False, index=True),
          Column("body", LargeBinary, nullable=False))
    Table("queue", m, Column("task_id", String(64), primary_key=True),
          Column("seq", BigInteger, nullable=False, index=True),
          Column("leased_by", String(128), nullable=False, index=True),
          Column("body", LargeBinary, nullable=False))
    Table("audit", m, Column("seq", BigInteger, primary_key=True, autoincrement=False),
          Column("body", LargeBinary, nullable=False))
    return m


# -- the migrations build what the code (and the previous release) expects ----
def test_revision_0001_is_the_previous_release_schema(tmp_path: Path) -> None:
    open_db(_url(tmp_path, "alembic.db"), "0001").close()
    engine = create_engine(_url(tmp_path, "old.db"))
    _previous_release_v1().create_all(engine)
    engine.dispose()
    assert _ddl(tmp_path / "alembic.db") == _ddl(tmp_path / "old.db")


def test_head_builds_exactly_the_tables_the_code_uses(tmp_path: Path) -> None:
    open_db(_url(tmp_path, "alembic.db")).close()
    engine = create_engine(_url(tmp_path, "code.db"))
    metadata.create_all(engine)
    engine.dispose()
    assert _ddl(tmp_path / "alembic.db") == _ddl(tmp_path / "code.db")


def test_schema_version_is_the_head_revision() -> None:
    revisions = history()
    ids = [f"{n:04d}" for n in range(1, SCHEMA_VERSION + 1)]  # one chain, numbered in order
    assert [r.id for r in revisions] == ids
    assert [r.down for r in revisions] == [None, *ids[:-1]]


# -- upgrades and downgrades keep every record ---------------------------------
@pytest.mark.parametrize("pre_alembic", [False, True], ids=["stamped", "pre-alembic"])
def test_a_v1_database_with_data_upgrades_with_every_record_intact(
        tmp_path: Path, pre_alembic: bool) -> None:
    check_upgrade_from_v1(_url(tmp_path), pre_alembic=pre_alembic)


def test_downgrade_then_upgrade_round_trips_with_data(tmp_path: Path) -> None:
    check_round_trip(_url(tmp_path))


def test_downgrade_to_base_drops_every_table_and_upgrade_rebuilds(tmp_path: Path) -> None:
    url = _url(tmp_path)
    open_db(url).close()
    schema = Schema(url)
    assert schema.downgrade("base") == HEAD
    assert schema.current() is None
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    assert schema.upgrade() is None
    assert schema.current() == HEAD
    schema.close()


# -- refusals --------------------------------------------------------------------
def test_a_database_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    url = _url(tmp_path)
    open_db(url).close()
    with sqlite3.connect(tmp_path / "confide.db") as c:
        c.execute("UPDATE alembic_version SET version_num = '0099'")
    with pytest.raises(StorageError, match="0099 is newer than this confide"):
        open_db(url)
    with pytest.raises(StorageError, match="newer"):
        Schema(url).current()


def test_a_pre_alembic_database_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    url = _url(tmp_path)
    open_db(url).close()
    with sqlite3.connect(tmp_path / "confide.db") as c:
        c.execute("DROP TABLE alembic_version")
        c.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (b"7",))
    with pytest.raises(StorageError, match="0007 is newer"):
        open_db(url)


def test_unknown_and_wrong_direction_targets_are_refused(tmp_path: Path) -> None:
    url = _url(tmp_path)
    open_db(url, "0001").close()
    schema = Schema(url)
    with pytest.raises(StorageError, match="unknown revision '0099'"):
        schema.upgrade("0099")
    with pytest.raises(StorageError, match="newer than the database's 0001"):
        schema.downgrade("0002")
    schema.upgrade()
    with pytest.raises(StorageError, match=f"older than the database's {HEAD}"):
        schema.upgrade("0001")
    assert schema.current() == HEAD
    schema.close()


def test_a_failed_migration_leaves_the_schema_as_it_was(tmp_path: Path) -> None:
    url = _url(tmp_path)
    open_db(url, "0001").close()
    with sqlite3.connect(tmp_path / "confide.db") as c:  # pre-Alembic v1 ...
        c.execute("DROP TABLE alembic_version")
        c.execute("CREATE TABLE user_names (x INTEGER)")  # ... with a stray table
    with pytest.raises(StorageError, match="cannot migrate the database"):
        open_db(url)
    with sqlite3.connect(tmp_path / "confide.db") as c:  # not stamped, not half-upgraded
        names = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "alembic_version" not in names
        assert c.execute("SELECT value FROM meta").fetchone()[0] == b"1"


# -- the operator's commands -------------------------------------------------------
def test_db_commands_show_upgrade_and_downgrade(tmp_path: Path) -> None:
    open_db(_url(tmp_path), "0001").close()
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(_app.app, ["db", *args, "--data-dir", str(tmp_path)])
        assert result.exit_code == 0, result.output
        return result.output

    assert f"0001 (head is {HEAD}" in run("current")
    assert f"schema 0001 -> {HEAD}" in run("upgrade")
    assert '"up_to_date": true' in run("current", "--json")
    assert f"schema {HEAD} -> 0001" in run("downgrade", "0001")
    refused = runner.invoke(_app.app, ["db", "downgrade", "base", "--data-dir", str(tmp_path)])
    assert refused.exit_code == 1 and "--yes" in refused.output
    assert "schema 0001 -> empty" in run("downgrade", "base", "--yes")


def test_db_commands_refuse_a_missing_database(tmp_path: Path) -> None:
    result = CliRunner().invoke(_app.app, ["db", "current", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "no database at" in result.output
