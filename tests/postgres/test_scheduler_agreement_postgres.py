"""Scheduler nodes on one PostgreSQL database agree on the clock and the executor
timeout (issue 12): the real database clock, and real nodes refused at start."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from confide.crypto.records import RecordSealer
from confide.services.scheduler import AgreementError, SchedulerAgreement
from confide.storage import Database

from ..platform._server import Server, _listening, free_port
from ..platform.test_roles import _Proc


def _agreement(db: Database, generation: str, offset_s: float = 0.0) -> SchedulerAgreement:
    return SchedulerAgreement(db, generation=generation, executor_timeout_s=30, max_skew_s=1.0,
                              horizon_s=10.0, clock=lambda: time.time() + offset_s)


def test_the_database_clock_is_compared_with_this_nodes(pg_url: str) -> None:
    db = Database(pg_url, RecordSealer(b"s" * 32))
    try:
        server_now = db.server_time()
        assert server_now is not None and abs(server_now - time.time()) < 1.0  # one host
        _agreement(db, "a").check_start()
        with pytest.raises(AgreementError, match=r"5\.\d{3} s ahead of the database's"):
            _agreement(db, "b", offset_s=5.0).check_start()
    finally:
        db.close()


def _scheduler_node(tmp_path: Path, name: str, front: Server, pg_url: str,
                    timeout: float) -> tuple[_Proc, int]:
    port = free_port()
    node = _Proc(["serve", "--data-dir", str(tmp_path / name), "--services", "scheduler",
                  "--keys", f"127.0.0.1:{front.ports['keys']}", "--database-url", pg_url,
                  "--sim-attester", str(tmp_path / "sim"), "--scheduler-port", str(port),
                  "--workers", "0", "--executor-timeout", str(timeout)], tmp_path / f"{name}.log")
    return node, port


def test_a_scheduler_node_with_another_executor_timeout_is_refused(
        tmp_path: Path, pg_url: str) -> None:
    front = Server(tmp_path / "cp", workers=0, executor_timeout=30, database_url=pg_url).start()
    started: list[_Proc] = []
    try:
        shutil.copytree(front.data_dir / "sim-attester", tmp_path / "sim")
        same, port = _scheduler_node(tmp_path, "same", front, pg_url, 30)
        started.append(same)
        same.wait_for(lambda: _listening(port))  # the same timeout: it joins
        other, _ = _scheduler_node(tmp_path, "other", front, pg_url, 10)
        started.append(other)
        assert other.exit_code() == 2, other.text()[-3000:]
        assert ("cannot start the scheduler: another scheduler node on this database uses "
                "--executor-timeout 30 s, this one 10 s") in other.text()
        # Once every 30 s node stopped (their entries removed), a 10 s node may start.
        same.stop()
        front.stop()
        front = Server(tmp_path / "cp", workers=0, executor_timeout=10,
                       database_url=pg_url).start()
    finally:
        for p in started:
            p.stop()
        front.stop()
