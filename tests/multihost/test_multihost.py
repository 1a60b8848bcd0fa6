"""Issue 12 item 8 (first scenarios): the platform across hosts, every internal
channel mutually attested.

Hosts are network namespaces (conftest.py): PostgreSQL on ``db``, the control
plane on ``cp``, workers on ``w1``, clients on ``cl``. Select with
``-m multihost``.
"""

from __future__ import annotations

import json
import sys

import pytest

from .conftest import Cluster, env, text, wait_for

# Later scenarios use hosts an earlier one started: `make test` gives a module to
# one xdist worker (--dist loadfile).
pytestmark = pytest.mark.multihost


def test_a_three_party_task_runs_end_to_end_across_hosts(cluster: Cluster) -> None:
    log = cluster.start_worker_host(cluster.w1, "w1")
    wait_for("the worker host to enrol", lambda: "enrolled as w1/executor-" in text(log),
             log=log)
    out = cluster.client("three-party")
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert result["ok"] is True, result["reason"]
    assert result["return_value"] == "true"
    assert result["participants"] == result["expected_participants"]  # three parties
    # It ran on the worker host, which enrolled over the network with its evidence.
    assert "enrolled node 'w1/executor-" in text(cluster.cp_log)
    assert "task ok on builtin" in text(log)


def test_a_node_with_a_wrong_measurement_is_refused_when_it_joins(
        cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> None:
    other = tmp_path_factory.mktemp("other-build")
    (other / "__init__.py").write_text("# not the audited code\n")
    node_dir = cluster.work / "rogue"
    out = cluster.w1.run([sys.executable, "-m", "confide", "serve", "--data-dir",
                          str(node_dir), "--services", "scheduler",
                          "--keys", cluster.address("keys"), "--internal-host",
                          cluster.w1.address, "--sim-attester", str(cluster.sim_copy),
                          "--database-url", cluster.postgres.url, "--workers", "0"],
                         env={**env(), "CONFIDE_SIM_MEASURE_ROOT": str(other)}, timeout=120)
    said = " ".join((out.stdout + out.stderr).split())
    assert out.returncode == 2, said[-3000:]
    assert "cannot join the platform" in said and "not listed for role scheduler" in said
    audit = cluster.client("audit", 'message:"enrolment refused"')
    assert audit.returncode == 0, audit.stderr[-3000:]
    entries = json.loads(audit.stdout)
    assert any(e["user"].endswith("/scheduler") and e["user"].startswith("node:")
               and "not listed for role scheduler" in e["message"] and e["ok"] is False
               for e in entries), entries


def test_the_scheduler_runs_on_a_host_of_its_own(cluster: Cluster) -> None:
    """Roles split further: a scheduler host joins through the key service; a second
    worker host pulls from it; the control plane's frontend still takes the task."""
    cluster.w1.stop_all()  # from here on only the new host's workers run tasks
    sc, w2 = cluster.topology.add_host("sc"), cluster.topology.add_host("w2")
    sc_log = cluster.start_scheduler_host(sc)
    assert "joined the platform through" in text(sc_log)
    assert "enrolled node" in text(cluster.cp_log) and "for scheduler" in text(cluster.cp_log)
    log = cluster.start_worker_host(w2, "w2", scheduler=f"{sc.address}:17780")
    wait_for("the second worker host", lambda: "enrolled as w2/executor-" in text(log), log=log)
    out = cluster.client("three-party")
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert (result["ok"], result["return_value"]) == (True, "true"), result["reason"]
    assert "task ok on builtin" in text(log)  # it ran on w2, pulled through the sc host


def test_a_revoked_worker_host_is_refused_across_hosts(cluster: Cluster) -> None:
    """The operator revokes a host on the control plane; the scheduler on another host
    refuses its workers (the revocation is in the shared database) and it cannot re-enrol."""
    log = cluster.work / "worker-w2.log"
    assert "enrolled as w2/executor-" in text(log)  # from the previous test
    out = cluster.cp.run([sys.executable, "-m", "confide", "node", "revoke", "w2", "--reason",
                          "lost", "--data-dir", str(cluster.cp_dir), "--database-url",
                          cluster.postgres.url], env=env())
    assert out.returncode == 0, out.stderr[-3000:]
    wait_for("the scheduler host to refuse w2", lambda: (
        "the scheduler refused this executor (UNAUTHENTICATED: node w2/executor-"
        in text(log)), log=log)
    wait_for("w2's next worker to be refused", lambda: (
        "enrolment refused: node-revoked" in text(log)), log=log)
    audit = cluster.client("audit", 'message:"is revoked"')
    assert audit.returncode == 0, audit.stderr[-3000:]
    assert any(e["user"].startswith("node:w2/executor-") and e["ok"] is False
               for e in json.loads(audit.stdout))


def test_postgresql_restarts_and_later_tasks_finish(cluster: Cluster) -> None:
    """Issue 12 item 8: the database host restarts PostgreSQL (pg_ctl restart); the
    services on the other hosts reconnect, a task created afterwards finishes, and
    the audit chain in the shared database is still intact."""
    w3 = cluster.topology.add_host("w3")
    log = cluster.start_worker_host(w3, "w3")
    wait_for("the third worker host", lambda: "enrolled as w3/executor-" in text(log), log=log)
    pg = cluster.postgres  # -l: without it the server would hold pg_ctl's output pipe
    out = cluster.db.run([str(pg.bin / "pg_ctl"), "-D", str(pg.data), "-l", str(pg.log), "-m",
                          "fast", "-w", "-t", "60", "restart"], user="postgres", timeout=90)
    assert out.returncode == 0, out.stdout + out.stderr
    out = cluster.client("three-party")
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert (result["ok"], result["return_value"]) == (True, "true"), result["reason"]
    verify = cluster.cp.run([sys.executable, "-m", "confide", "audit", "verify",
                             "--data-dir", str(cluster.cp_dir), "--database-url",
                             pg.url], env=env(), timeout=60)
    said = " ".join((verify.stdout + verify.stderr).split())
    assert verify.returncode == 0, said[-3000:]
