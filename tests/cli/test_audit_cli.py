"""``confide audit`` and ``confide audit verify`` for participants, through the installed
entry point: a readable table with RFC 3339 times and task ids, --json, --task, and a
database edit that makes verification fail (then the operator's chain check fails too)."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.platform._helpers import input_file, io_function
from tests.platform._server import Server

from .test_cli_errors_and_review import Cli


@dataclass
class Setup:
    cli: Cli
    acme: str
    alice: str
    bob: str
    alice_task: str
    bob_task: str


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("audit-cli")
    server = Server(root / "confide-data").start()
    cli = Cli(server, root / "home", root)
    try:
        cli.ok("user", "login", "admin", "-d", server.data_dir, "--password-stdin",
               stdin="teaclave\n", profile="admin")
        acme = cli.user("acme", "FunctionOwner")
        alice = cli.user("alice", "DataOwner", "org-a")
        bob = cli.user("bob", "DataOwner", "org-b")
        with server.client(acme, "pw") as c:
            fid = io_function(c, ["in"], [])
        tasks = {}
        for who in (alice, bob):
            with server.client(who, "pw") as c:
                tid = c.create_task(fid, {"message": "m"}, executor="builtin",
                                    inputs_ownership={"in": [who]})
                c.assign_data(tid, inputs={"in": input_file(c)})
                tasks[who] = tid
        yield Setup(cli, acme, alice, bob, tasks[alice], tasks[bob])
    finally:
        server.stop()


def test_a_participant_lists_her_entries_readably(setup: Setup) -> None:
    out = setup.cli.ok("audit", profile=setup.alice)
    assert "verified against the signed tree" in out
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", out)
    assert setup.alice_task in out and "create_task" in out and "user_login" in out
    assert setup.bob_task not in out


def test_json_and_task_filter(setup: Setup) -> None:
    data = json.loads(setup.cli.ok("audit", "--json", "--task", setup.alice_task,
                                   profile=setup.acme))
    assert data["verified"] is True and data["tree_head"]["tree_size"] > 0
    assert data["entries"] and all(setup.alice_task in e["task_ids"] for e in data["entries"])
    assert {e["actor"] for e in data["entries"]} == {setup.alice}
    assert all(e["time"].endswith("Z") for e in data["entries"])
    # the function owner sees both tasks; bob sees only his
    everything = json.loads(setup.cli.ok("audit", "--json", "--limit", "1000",
                                         profile=setup.acme))
    seen = {t for e in everything["entries"] for t in e["task_ids"]}
    assert {setup.alice_task, setup.bob_task} <= seen
    bobs = json.loads(setup.cli.ok("audit", "--json", "--limit", "1000", profile=setup.bob))
    assert setup.alice_task not in {t for e in bobs["entries"] for t in e["task_ids"]}
    assert {e["actor"] for e in bobs["entries"]} == {setup.bob}


def test_each_command_proves_the_log_extends_the_last_one_seen(setup: Setup) -> None:
    from confide.cli._session import Session

    cli = setup.cli
    cli.ok("audit", profile=setup.bob)
    path = cli.home / "profiles" / setup.bob / "session.json"
    saved = json.loads(path.read_text())
    assert saved["audit_tree_size"] > 0 and len(saved["audit_tree_root"]) == 64
    cli.ok("audit", "verify", profile=setup.bob)  # proven to extend it
    grown = json.loads(path.read_text())
    assert grown["audit_tree_size"] > saved["audit_tree_size"]
    # a head the server never signed (as after a rollback or a fork): refused
    forged = {**grown, "audit_tree_root": "00" * 32}
    path.write_text(json.dumps(forged))
    proc = cli("audit", profile=setup.bob)
    assert proc.returncode == 3 and "does not extend" in proc.stderr, proc.stderr
    path.write_text(json.dumps({**grown, "audit_tree_size": grown["audit_tree_size"] + 10**6}))
    proc = cli("audit", profile=setup.bob)
    assert proc.returncode == 3 and "shrank" in proc.stderr, proc.stderr
    path.write_text(json.dumps({**grown, "audit_tree_root": "zz"}))
    proc = cli("audit", profile=setup.bob)
    assert proc.returncode == 1 and "malformed" in proc.stderr, proc.stderr
    path.write_text(json.dumps(grown))
    cli.ok("audit", profile=setup.bob)
    assert Session.__dataclass_fields__["audit_tree_size"].default == 0


def test_verify_then_a_database_edit_fails_it(setup: Setup) -> None:
    cli = setup.cli
    out = cli.ok("audit", "verify", profile=setup.alice)
    assert "audit entries verify" in out and "signed" in out
    data = json.loads(cli.ok("audit", "verify", "--json", profile=setup.alice))
    assert data["verified"] is True and data["entries"] > 0
    # the operator's check still walks the whole chain
    assert "audit log verifies" in cli.ok("audit", "verify", "-d", cli.server.data_dir)
    # change one byte of alice's create_task entry in the database, recompute nothing
    entries = json.loads(cli.ok("audit", "--json", "--task", setup.alice_task,
                                profile=setup.alice))["entries"]
    seq = next(e["seq"] for e in entries if e["message"] == "create_task")
    db = Path(cli.server.data_dir) / "confide.db"
    with sqlite3.connect(db) as c:
        body = bytearray(c.execute("select body from audit where seq = ?", (seq,)).fetchone()[0])
        body[len(body) // 2] ^= 1
        c.execute("update audit set body = ? where seq = ?", (bytes(body), seq))
    proc = cli("audit", "verify", profile=setup.alice)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "DATA_LOSS" in proc.stderr and "edited in the database" in proc.stderr
    assert f"entry #{seq}" in proc.stderr or f"audit/{seq}:" in proc.stderr
    # bob's entries are not the edited one: still shown, verified
    bobs = json.loads(cli.ok("audit", "--json", profile=setup.bob))
    assert bobs["verified"] and seq not in {e["seq"] for e in bobs["entries"]}
    proc = cli("audit", "verify", "-d", cli.server.data_dir)
    assert proc.returncode == 3 and f"audit/{seq}:" in proc.stderr
