"""Key rotation on PostgreSQL (issue 13 item 8): the keyring row, reseal in
batches, concurrent rotations from several nodes, and a running server on
PostgreSQL picking up ``confide keys rotate --database-url``."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import jwt
import pytest
from sqlalchemy import create_engine, text

from confide.client import TaskStatus
from confide.keys import KeysError, RootSecret
from confide.node import PlatformKeys, open_platform_keys
from confide.storage import Tampered

from ..platform._helpers import echo_function
from ..platform._server import ADMIN_PASSWORD, Server

pytestmark = pytest.mark.postgres
ROOT = RootSecret(b"p" * 32)


def _open(url: str) -> PlatformKeys:
    return open_platform_keys(ROOT, url)


def test_rotate_and_reseal_on_postgres(pg_url: str) -> None:
    keys = _open(pg_url)
    try:
        with keys.db.write() as txn:
            for i in range(12):
                txn.insert("tasks", f"task-{i:02}", {"n": i}, seq=i + 1, status=0)
        keys.audit.append(user="u", message="before", result=True, ip=bytes(16))
        keys.rotation.rotate(["record", "audit"], actor="test")
        with keys.db.write() as txn:
            txn.insert("tasks", "task-new", {"n": 99}, seq=100, status=0)
        assert keys.db.count_by_key("tasks") == {1: 12, 2: 1}
        report = keys.rotation.reseal(actor="test", batch=5)
        assert report.tables["tasks"] == 12 and report.kid == "record-2"
        assert keys.db.count_by_key("tasks") == {2: 13}
        with keys.db.read() as txn:
            assert sorted(r.body["n"] for r in txn.scan("tasks")) == [*range(12), 99]
        assert keys.audit.verify_chain() == 4  # before, two rotations, the reseal
    finally:
        keys.close()
    again = _open(pg_url)  # a restart: the ring is in the database
    try:
        assert again.live.ring.active("record").kid == "record-2"
        assert again.audit.verify_chain() == 4
        # A changed kid in a row header is refused.
        engine = create_engine(pg_url)
        with engine.begin() as c:
            c.execute(text("update tasks set body = overlay(body placing '\\x00000001'::bytea "
                           "from 2 for 4) where id = 'task-00'"))
        engine.dispose()
        with pytest.raises(Tampered), again.db.read() as txn:
            txn.get("tasks", "task-00")
    finally:
        again.close()


def test_concurrent_rotations_from_several_nodes_all_land(pg_url: str) -> None:
    nodes = [_open(pg_url) for _ in range(3)]
    errors: list[BaseException] = []

    def rotate(node: PlatformKeys) -> None:
        try:
            for _ in range(4):
                node.rotation.rotate(["token"], actor="node")
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=rotate, args=(n,)) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert errors == [] or all(isinstance(e, KeysError) and e.reason == "keyring-busy"
                                   for e in errors)
        landed = 12 - len(errors)
        nodes[0].rotation.refresh()
        assert nodes[0].live.ring.active("token").version == 1 + landed
        assert len(nodes[0].audit.query("key_rotate", 100)) == landed
        assert nodes[0].audit.verify_chain() == landed
    finally:
        for n in nodes:
            n.close()


def _confide(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "confide", *args], capture_output=True,
                          text=True, timeout=120)


def test_a_server_on_postgres_picks_up_a_rotation(tmp_path: Path, pg_url: str) -> None:
    s = Server(tmp_path / "data", database_url=pg_url, workers=1,
               extra_env={"CONFIDE_KEYS__CHECK_INTERVAL_S": "0.5"}).start()
    try:
        admin = s.admin()
        assert jwt.get_unverified_header(admin._token or "")["kid"] == "token-1"
        fid = echo_function(admin)
        before = admin.create_task(fid, {"message": "before"}, executor="builtin")
        admin.invoke_task(before)
        assert admin.wait(before, 30).return_value == b"before"
        db = ["--data-dir", str(s.data_dir), "--database-url", pg_url]
        rotate = _confide("keys", "rotate", *db)
        assert rotate.returncode == 0, rotate.stdout + rotate.stderr
        deadline = time.monotonic() + 20
        while True:
            with s.client("admin", ADMIN_PASSWORD) as c:
                if jwt.get_unverified_header(c._token or "")["kid"] == "token-2":
                    break
            assert time.monotonic() < deadline, "the server never picked up the rotation"
            time.sleep(0.2)
        reseal = _confide("keys", "reseal", *db)
        assert reseal.returncode == 0, reseal.stdout + reseal.stderr
        after = admin.create_task(fid, {"message": "after"}, executor="builtin")  # old token
        admin.invoke_task(after)
        assert admin.wait(after, 30).return_value == b"after"
        assert admin.get_task(before).status == TaskStatus.FINISHED
        show = _confide("keys", "show", *db, "--json")
        assert show.returncode == 0, show.stdout + show.stderr
        record = json.loads(show.stdout)["kinds"]["record"]
        assert [(r["kid"], r["active"]) for r in record] == [("record-1", False),
                                                             ("record-2", True)]
        admin.close()
    finally:
        s.stop()
    verify = _confide("audit", "verify", "--data-dir", str(s.data_dir), "--database-url",
                      pg_url)
    assert verify.returncode == 0, verify.stdout + verify.stderr
