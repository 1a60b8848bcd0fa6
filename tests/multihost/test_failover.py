"""Issue 12 items 6 and 8: clients with several frontends; one frontend host dies mid-run.

Two hosts serve the client APIs: the control plane ``cp`` and a frontend-only host
``fe2`` that joined through the key service. Client sessions on ``cl`` attest both,
start on ``fe2``, and run tasks until told to stop; ``fe2``'s processes are killed
with SIGKILL while they run. Every session continues on ``cp``: no task is lost,
none is stuck or doubled, and the audit chain in the shared database verifies.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from .conftest import Cluster, env, text, wait_for

pytestmark = pytest.mark.multihost

SESSIONS = 3


def _done(log: Path) -> int:
    return text(log).count("done c")


def test_clients_continue_on_the_other_frontend_when_one_host_is_killed(
        cluster: Cluster) -> None:
    worker_log = cluster.start_worker_host(cluster.w1, "w1")
    wait_for("the worker host", lambda: "enrolled as w1/executor-" in text(worker_log),
             log=worker_log)
    fe2 = cluster.topology.add_host("fe2")
    fe2_log = cluster.start_frontend_host(fe2, "fe2")
    assert "joined the platform through" in text(fe2_log)
    hosts = f"{fe2.address},{cluster.cp.address}"  # fe2 first: every session starts there
    stop, out = cluster.work / "stop-load", cluster.work / "load.out"
    client = cluster.cl.popen([sys.executable, str(Path(__file__).with_name("_client.py")),
                               "sessions", hosts, str(cluster.cp_dir), str(stop), str(SESSIONS)],
                              out, env=env())
    try:
        wait_for("tasks through fe2", lambda: _done(out) >= 2 * SESSIONS, timeout=120, log=out)
        assert client.poll() is None, text(out)[-3000:]
        fe2.kill_all()  # kill -9 of every process of the frontend host, mid-run
        at_kill, killed = _done(out), time.monotonic()
        wait_for("a task after the kill", lambda: _done(out) > at_kill, timeout=120, log=out)
        pause = time.monotonic() - killed
        wait_for("tasks after the kill", lambda: _done(out) >= at_kill + 3 * SESSIONS,
                 timeout=180, log=out)
        stop.touch()
        client.wait(180)
    finally:
        if client.poll() is None:
            client.kill()
    assert client.returncode == 0, text(out)[-3000:]
    summary = json.loads(out.read_text().strip().splitlines()[-1])
    sessions = summary["sessions"]
    assert len(sessions) == SESSIONS
    for s in sessions:
        # no task lost or stuck: every task this session made ended, with its own message
        assert set(s["results"]) == set(s["made"]), s
        for tid, (status, ok, value, message, reason) in s["results"].items():
            assert (status, ok, value) == ("Finished", True, message), (tid, reason)
        assert sorted(s["made"]) == s["listed"], s  # none doubled by a resend
        assert s["endpoints"] == ["down", "in use"], s  # it failed over and stayed
    total = sum(len(s["made"]) for s in sessions)
    assert total >= at_kill + 3 * SESSIONS
    print(f"{total} tasks in {SESSIONS} sessions, {at_kill} before the kill; first task "
          f"after it ended {pause:.2f} s later; invocations whose answer was lost: "
          f"{sum(s['looked'] for s in sessions)}")
    # The audit chain in the shared database is intact.
    verify = cluster.cp.run([sys.executable, "-m", "confide", "audit", "verify", "--data-dir",
                             str(cluster.cp_dir), "--database-url", cluster.postgres.url],
                            env=env(), timeout=120)
    said = " ".join((verify.stdout + verify.stderr).split())
    assert verify.returncode == 0, said[-3000:]
    assert all(p.poll() is not None for p in fe2.procs)  # fe2 stayed dead throughout
