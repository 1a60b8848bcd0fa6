"""The role tables (keys/_roles.py), the revocation list and its migration (0004)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from confide.keys import (
    INTERNAL_RPC_POLICY,
    NODE_ROLES,
    ROLE_TABLES,
    KeysError,
    PeerNotAllowedError,
    RoleMeasurements,
    check_rpc,
    is_revoked_id,
)
from confide.services.keys import NodeRevocations, RevocationError
from confide.storage import Schema, Tampered

from ._migration_support import HEAD, open_db
from ._services import sqlite_database

GOOD = {"mr_enclave": "aa" * 32, "mr_signer": "bb" * 32}


def test_every_worker_rpc_is_for_the_execution_role_only() -> None:
    for rpc in ("PullTask", "ReportAndPull", "Heartbeat", "UpdateTaskResult"):
        method = f"/confide.v1.Scheduler/{rpc}"
        assert INTERNAL_RPC_POLICY[method] == {"execution"}
        assert check_rpc(method, {"execution"}) == "execution"
        for role in set(NODE_ROLES) - {"execution"}:
            refusal = re.escape(f"role {role} may not call {method}")
            with pytest.raises(PeerNotAllowedError, match=refusal):
                check_rpc(method, {role})


def test_an_rpc_outside_the_table_accepts_nobody() -> None:
    with pytest.raises(PeerNotAllowedError, match=re.escape("may not call /confide.v1.Other/Call")):
        check_rpc("/confide.v1.Other/Call", set(NODE_ROLES))
    with pytest.raises(PeerNotAllowedError, match="role none may not call"):
        check_rpc("/confide.v1.Scheduler/PullTask", set())


def test_a_role_is_granted_only_to_its_tables_measurement() -> None:
    tables = {ROLE_TABLES[r]: GOOD for r in ("execution", "frontend")}
    roles = RoleMeasurements(tables)
    roles.check(["execution", "frontend"], {**GOOD, "extra": "x"})
    with pytest.raises(KeysError, match="not listed for role execution"):
        roles.check(["execution"], {**GOOD, "mr_enclave": "cc" * 32})
    with pytest.raises(KeysError, match="not listed for role execution"):
        roles.check(["execution"], {"mr_enclave": GOOD["mr_enclave"]})  # signer missing
    with pytest.raises(KeysError, match="not listed for role scheduler"):
        roles.check(["execution", "scheduler"], GOOD)  # no table for that role
    with pytest.raises(KeysError, match="unknown-role"):
        roles.check(["storage"], GOOD)
    with pytest.raises(KeysError, match="not listed"):
        RoleMeasurements({ROLE_TABLES["execution"]: {}}).check(["execution"], GOOD)


def test_a_revoked_id_covers_its_own_subtree_only() -> None:
    assert is_revoked_id("host-a", {"host-a"}) == "host-a"
    assert is_revoked_id("host-a/executor-1", {"host-a"}) == "host-a"
    assert is_revoked_id("host-ab/executor-1", {"host-a"}) is None
    assert is_revoked_id("host", {"host-a"}) is None


def test_revocations_are_stored_sealed_and_cached(tmp_path: Path) -> None:
    db = sqlite_database(tmp_path)
    now = [100.0]
    revocations = NodeRevocations(db, clock=lambda: 5.0, ttl_s=2.0, monotonic=lambda: now[0])
    assert revocations.covering("host-a/executor-1") is None
    other = NodeRevocations(db, clock=lambda: 6.0, ttl_s=0.0)
    entry = other.revoke("host-a", "stolen")
    assert (entry.node_id, entry.reason, entry.revoked_at) == ("host-a", "stolen", 6.0)
    assert other.revoke("host-a", "again").reason == "stolen"  # the first stands
    assert revocations.covering("host-a/executor-1") is None  # cached for ttl_s
    now[0] += 2.5
    covering = revocations.covering("host-a/executor-1")
    assert covering is not None and covering.reason == "stolen"
    for bad in ("", "x" * 129, "tab\there"):
        with pytest.raises(RevocationError):
            other.revoke(bad, "")
    with pytest.raises(RevocationError):
        other.revoke("ok", "r" * 300)
    with db.engine.begin() as c:  # the untrusted database swaps the body: detected
        c.exec_driver_sql("UPDATE revoked_nodes SET body = X'00' WHERE id = 'host-a'")
    with pytest.raises(Tampered):
        other.all()


def test_migration_0004_adds_and_drops_the_revocation_table(tmp_path: Path) -> None:
    check_revocation_migration(f"sqlite:///{tmp_path / 'm.db'}")


def check_revocation_migration(url: str) -> None:
    """0002 -> head adds ``revoked_nodes`` (usable), head -> 0002 drops it."""
    db = open_db(url, "0002")
    engine = create_engine(url)
    assert not inspect(engine).has_table("revoked_nodes")
    db.close()
    schema = Schema(url)
    assert schema.upgrade() == "0002"
    assert schema.current() == HEAD
    engine.dispose()
    engine = create_engine(url)
    assert inspect(engine).has_table("revoked_nodes")
    db = open_db(url)
    NodeRevocations(db).revoke("host-a", "")
    db.close()
    assert schema.downgrade("0002") == HEAD
    engine.dispose()
    engine = create_engine(url)
    assert not inspect(engine).has_table("revoked_nodes")
    engine.dispose()
    assert schema.upgrade() == "0002"  # and back up again
    schema.close()
    db = open_db(url)
    assert NodeRevocations(db).all() == {}  # the downgrade forgot the revocations
    db.close()
