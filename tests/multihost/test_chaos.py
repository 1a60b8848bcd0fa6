"""Issue 12 item 8, the faults under load: a worker host's link is cut, a worker
host and a scheduler host are killed (kill -9 of every process on it), and one
of two scheduler nodes is stopped (SIGTERM, a rolling restart).

Each scenario runs the same load from the client host (Python tasks that
sleep :data:`SLEEP_S`, one per worker slot, then echo tasks queued behind
them), injects the fault once every sleeper is Running, and asserts: no task
lost (every one reaches a final state), none stuck (the last one is final
within the lease plus :data:`SLACK_S` of the fault), only tasks of the faulted
host fail, with Teaclave's executor-timeout text, the rest finish with their
result, the audit chain verifies; and the host, healed or restarted, takes
new work. Measured numbers are printed (``-s``) as ``chaos: {...}``.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ._netns import Host
from .conftest import LEASE_S, Cluster, env, text, wait_for

# The scenarios run in order on one cluster (each starts from where the last left
# its hosts): `make test` gives a module to one xdist worker (--dist loadfile).
pytestmark = pytest.mark.multihost

EXECUTOR_TIMEOUT = "Runtime Error: Executor Timeout"
SLOTS = 2  # per worker host: SLOTS sleepers run on each
SLEEP_S = 8.0
ECHOES = 12
#: A reaper round (1 s), the keepalive's detection, two cores shared by every host.
SLACK_S = 8.0


class Load:
    """The client host's ``_client.py load`` running in the background."""

    def __init__(self, cluster: Cluster, name: str, n: int, sleepers: int) -> None:
        self.n = n
        self.log = cluster.work / f"load-{name}.log"
        script = Path(__file__).with_name("_client.py")
        cluster.cl.popen([sys.executable, str(script), "load", cluster.cp.address,
                          str(cluster.cp_dir / "api-cert.pem"), str(n), str(sleepers),
                          str(SLEEP_S)], self.log, env=env())

    def event(self, name: str, timeout: float) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        def said() -> bool:
            for line in self.log.read_text(errors="replace").splitlines():
                if line.startswith("{") and json.loads(line).get("event") == name:
                    found.append(json.loads(line))
                    return True
            return False

        wait_for(f"the load's {name!r}", said, timeout=timeout, log=self.log)
        return found[0]


def _enrolled(log: Path, name: str, before: int) -> None:
    wait_for(f"{name} to enrol", lambda: text(log).count(f"enrolled as {name}/executor-") > before,
             log=log, timeout=60)


def _start_workers(cluster: Cluster, host: Host, scheduler: str | None = None) -> Path:
    log = cluster.work / f"worker-{host.name}.log"
    before = text(log).count(f"enrolled as {host.name}/executor-")
    cluster.start_worker_host(host, host.name, scheduler=scheduler, slots=SLOTS)
    _enrolled(log, host.name, before)
    return log


def _outcome(done: dict[str, Any], fault_at: float, n: int,
             reason: str = EXECUTOR_TIMEOUT) -> dict[str, Any]:
    """Assert the scenario's invariants; the measured numbers."""
    tasks: dict[str, dict[str, Any]] = done["tasks"]
    assert done["stuck"] == {}, f"tasks never final: {done['stuck']}"
    assert len(tasks) == n  # none lost
    timed_out = [t for t in tasks.values() if t["reason"] == reason]
    for task in tasks.values():
        if task["reason"] != reason:
            assert task["ok"] is True, task
            assert task["return_value"] == ("slept" if task["kind"] == "sleep"
                                            else task["return_value"]), task
            assert task["kind"] == "sleep" or task["return_value"].startswith("m"), task
    # Only the faulted host's tasks fail: the sleepers it held, one per slot.
    assert all(t["kind"] == "sleep" for t in timed_out), timed_out
    assert len(timed_out) == SLOTS, tasks
    last = max(t["final_at"] for t in tasks.values()) - fault_at
    assert last <= LEASE_S + SLACK_S, last
    timed_out_after = max(t["final_at"] for t in timed_out) - fault_at
    assert timed_out_after <= LEASE_S + SLACK_S, timed_out_after
    return {"tasks": n, "executor_timeout": len(timed_out),
            "fault_to_timed_out_s": round(timed_out_after, 2),
            "fault_to_all_final_s": round(last, 2)}


def _audit_chain_verifies(cluster: Cluster) -> None:
    verify = cluster.cp.run([sys.executable, "-m", "confide", "audit", "verify", "--data-dir",
                             str(cluster.cp_dir), "--database-url", cluster.postgres.url],
                            env=env(), timeout=120)
    said = " ".join((verify.stdout + verify.stderr).split())
    assert verify.returncode == 0, said[-3000:]


def _runs_new_work(cluster: Cluster, log: Path, name: str, since: float) -> float:
    """With the host's peers stopped, a new task can only run there: seconds from
    ``since`` (healed or restarted) to it being final."""
    before = text(log).count("task ok on builtin")
    load = Load(cluster, f"{name}-after-{int(since)}", 1, 0)
    done = load.event("done", timeout=90)
    task = next(iter(done["tasks"].values()))
    assert task["ok"] is True, task
    assert text(log).count("task ok on builtin") == before + 1  # it ran on this host
    return round(task["final_at"] - since, 2)


def _report(scenario: str, numbers: dict[str, Any]) -> None:
    print(f"\nchaos: {json.dumps({'scenario': scenario, **numbers})}")


def _under_load(cluster: Cluster, name: str, fault: Any, reason: str = EXECUTOR_TIMEOUT
                ) -> tuple[dict[str, Any], float]:
    sleepers = 2 * SLOTS  # two worker hosts: one sleeper per slot
    load = Load(cluster, name, sleepers + ECHOES, sleepers)
    load.event("running", timeout=90)
    fault_at = time.time()
    fault()
    done = load.event("done", timeout=LEASE_S + SLACK_S + 120)
    return _outcome(done, fault_at, sleepers + ECHOES, reason), fault_at


def test_a_worker_hosts_link_is_cut_under_load(cluster: Cluster) -> None:
    """Its tasks end within the lease timeout, the rest finish on the other host;
    once the link is back the host takes new work."""
    w2 = cluster.topology.add_host("w2")
    w1_log = _start_workers(cluster, cluster.w1)
    _start_workers(cluster, w2)
    numbers, _ = _under_load(cluster, "cut", lambda: cluster.topology.cut(cluster.w1))
    _audit_chain_verifies(cluster)
    # The worker noticed the cut by itself (keepalive), not only when TCP gave up.
    wait_for("w1 to notice", lambda: "heartbeat failed: StatusCode.UNAVAILABLE" in text(w1_log),
             log=w1_log, timeout=30)
    w2.stop_all()
    healed = time.time()
    cluster.topology.mend(cluster.w1)
    numbers["healed_to_new_task_final_s"] = _runs_new_work(cluster, w1_log, "w1", healed)
    _report("cut a worker host's link", numbers)
    _start_workers(cluster, w2)


def test_kill_9_of_a_worker_host_under_load(cluster: Cluster) -> None:
    w2 = cluster.topology.hosts["w2"]
    killed: list[int] = []
    numbers, _ = _under_load(cluster, "kill-worker", lambda: killed.append(
        cluster.w1.kill_9()))
    assert killed[0] >= 2  # the worker host's supervisor and its worker process (at least)
    wait_for("no process left on w1", lambda: not cluster.w1.netns_pids())
    _audit_chain_verifies(cluster)
    w2.stop_all()
    restarted = time.time()
    w1_log = _start_workers(cluster, cluster.w1)
    numbers["restart_to_new_task_final_s"] = _runs_new_work(cluster, w1_log, "w1", restarted)
    numbers["processes_killed"] = killed[0]
    _report("kill -9 of a worker host", numbers)


def test_kill_9_of_a_scheduler_host_under_load(cluster: Cluster) -> None:
    """Two scheduler nodes share the database: w1 pulls from the control plane's,
    w2 from the scheduler host's. Killing that host ends w2's tasks (their leases
    run out and the control plane's reaper fails them); the rest finish."""
    w2 = cluster.topology.hosts["w2"]  # stopped by the previous test
    sc = cluster.topology.add_host("sc")
    cluster.start_scheduler_host(sc)
    w2_log = _start_workers(cluster, w2, scheduler=f"{sc.address}:17780")
    numbers, _ = _under_load(cluster, "kill-scheduler", sc.kill_9)
    _audit_chain_verifies(cluster)
    cluster.w1.stop_all()
    restarted = time.time()
    cluster.start_scheduler_host(sc)
    numbers["restart_to_new_task_final_s"] = _runs_new_work(cluster, w2_log, "w2", restarted)
    _report("kill -9 of a scheduler host", numbers)


def test_sigterm_of_one_scheduler_node_fails_only_the_tasks_leased_through_it(
        cluster: Cluster) -> None:
    """A rolling restart of a scheduler node under load: after its grace period it
    fails the tasks its own worker host runs, never those the other node leased
    (each lease names its node: before, every Running task on the shared database
    failed with the stopping node's reason)."""
    sc, w2 = cluster.topology.hosts["sc"], cluster.topology.hosts["w2"]
    sc.stop_all()
    w2.stop_all()  # started afresh below: pulling from the new node, not backing off
    cluster.start_scheduler_host(sc, "--shutdown-grace", "1")
    _start_workers(cluster, w2, scheduler=f"{sc.address}:17780")
    _start_workers(cluster, cluster.w1)  # stopped by the previous test
    reason = "Runtime Error: Server Shutdown (still running after the 1 s shutdown grace period)"
    numbers, _ = _under_load(cluster, "sigterm-scheduler",
                             lambda: sc.procs[-1].send_signal(signal.SIGTERM), reason)
    assert sc.procs[-1].wait(30) == 0
    _audit_chain_verifies(cluster)
    assert "task ok on mesapy" in text(cluster.work / "worker-w1.log")
    numbers["failed_with_shutdown_reason"] = numbers.pop("executor_timeout")
    _report("SIGTERM of one of two scheduler nodes", numbers)
    w2.stop_all()
