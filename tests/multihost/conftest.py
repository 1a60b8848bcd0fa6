"""A multi-host platform on one machine: hosts are network namespaces (see _netns.py).

``db`` runs a PostgreSQL of its own (initdb/pg_ctl of the installed server,
listening on the db host's address only), ``cp`` the control plane
(authentication, frontend, scheduler, keys), ``w1`` a worker host
(``confide worker``), ``cl`` the clients. Everything is torn down in the
fixture's finalizer, also when set-up fails half way.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import confide

from ._netns import Host, Topology

PORTS = {"authentication": 7776, "frontend": 7777, "blobs": 7778, "scheduler": 17780,
         "keys": 17781, "attestation": 17782}
#: The suite's lease (``--executor-timeout``): a task whose worker stops renewing it
#: ends this long after the last renewal (the sealed per-task ``lease_until``, the
#: same on every scheduler node).
LEASE_S = 6
FLAGS = {"authentication": "--authentication-port", "frontend": "--frontend-port",
         "blobs": "--blob-port", "scheduler": "--scheduler-port", "keys": "--key-service-port",
         "attestation": "--attestation-service-port"}


def _skip_unless_possible() -> None:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    if shutil.which("ip") is None or shutil.which("runuser") is None:
        pytest.skip("needs iproute2 and runuser")
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        pytest.skip("needs a PostgreSQL server install (/usr/lib/postgresql/*/bin)")


def env() -> dict[str, str]:
    src = str(Path(confide.__file__).resolve().parents[1])
    pythonpath = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": pythonpath}


def wait_for(what: str, check: Callable[[], bool], timeout: float = 40.0,
             log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise AssertionError(f"timed out waiting for {what}\n{tail}")
        time.sleep(0.1)


def text(log: Path) -> str:
    """A log, whitespace runs (rich wraps lines) as one space."""
    return " ".join(log.read_text(errors="replace").split()) if log.exists() else ""


class Postgres:
    def __init__(self, host: Host, run_id: str) -> None:
        self.bin = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1])
        # Under /tmp (traversable), owned by the postgres user that the server must run as.
        self.dir = Path(tempfile.mkdtemp(prefix=f"confide-roles-{run_id}-pg-", dir="/tmp"))
        shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.host = host
        self.started = False
        out = host.run([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                        "--auth=trust", "-E", "UTF8", "--no-sync"], user="postgres",
                       timeout=120)
        assert out.returncode == 0, out.stderr
        with open(self.data / "pg_hba.conf", "a") as hba:  # the other hosts of this run
            hba.write(f"host all all {host.address.rsplit('.', 1)[0]}.0/24 trust\n")
        options = (f"-c listen_addresses={host.address} -p 5432 -k {self.dir} -c fsync=off "
                   "-c synchronous_commit=off -c max_connections=200")
        out = host.run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                        "-w", "-t", "60", "-o", options, "start"], user="postgres", timeout=90)
        assert out.returncode == 0, out.stdout + out.stderr + self.log.read_text()
        self.started = True
        self.url = f"postgresql+psycopg://postgres@{host.address}:5432/postgres"

    def stop(self) -> None:
        if self.started:
            subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin / "pg_ctl"), "-D",
                            str(self.data), "-m", "immediate", "-w", "-t", "30", "stop"],
                           capture_output=True, timeout=60)
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Cluster:
    topology: Topology
    db: Host
    cp: Host
    w1: Host
    cl: Host
    postgres: Postgres
    cp_dir: Path
    cp_log: Path
    sim_copy: Path  # what an operator copies to every other sim host
    work: Path

    def address(self, role: str) -> str:
        return f"{self.cp.address}:{PORTS[role]}"

    def start_worker_host(self, host: Host, name: str, workers: int = 1,
                          extra_env: dict[str, str] | None = None,
                          scheduler: str | None = None, slots: int | None = None) -> Path:
        log = self.work / f"worker-{name}.log"
        more = ["--slots", str(slots)] if slots is not None else []
        host.popen([sys.executable, "-m", "confide", "worker", "--scheduler",
                    scheduler or self.address("scheduler"), "--keys", self.address("keys"),
                    "--sim-attester", str(self.sim_copy), "--name", name,
                    "--workers", str(workers), *more], log,
                   env={**env(), **(extra_env or {})})
        return log

    def start_frontend_host(self, host: Host, name: str) -> Path:
        """Another replica of the client APIs (authentication, frontend) on ``host``, joined
        through the key service; its certificates are endorsed by the control plane's
        attestation report service, so clients attest both replicas with the same trust
        files."""
        data, log = self.work / name, self.work / f"{name}.log"
        host.popen([sys.executable, "-m", "confide", "serve", "--data-dir", str(data),
                    "--services", "authentication,frontend", "--keys", self.address("keys"),
                    "--host", host.address, "--internal-host", host.address,
                    "--sim-attester", str(self.sim_copy), "--database-url", self.postgres.url,
                    "--attestation-service", self.address("attestation"),
                    "--attestation-service-ca", str(self.cp_dir / "as-root-ca.pem")],
                   log, env=env())
        wait_for(f"the frontend host {name}", lambda: "confide is serving" in text(log), log=log)
        return log

    def start_scheduler_host(self, host: Host, *extra: str) -> Path:
        """A scheduler node of its own on ``host`` (data dir and log ``sc``), joined through
        the key service; returns once it serves (again, when restarted)."""
        log = self.work / "sc.log"
        before = text(log).count("confide is serving scheduler")
        host.popen([sys.executable, "-m", "confide", "serve", "--data-dir", str(self.work / "sc"),
                    "--services", "scheduler", "--keys", self.address("keys"),
                    "--internal-host", host.address, "--sim-attester", str(self.sim_copy),
                    "--database-url", self.postgres.url, "--workers", "0",
                    "--executor-timeout", str(LEASE_S), *extra], log, env=env())
        wait_for("the scheduler host", lambda: text(log).count(
            "confide is serving scheduler") > before, log=log, timeout=60)
        return log

    def client(self, *args: str, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
        script = Path(__file__).with_name("_client.py")
        return self.cl.run([sys.executable, str(script), args[0], self.cp.address,
                            str(self.cp_dir / "api-cert.pem"), *args[1:]], env=env(),
                           timeout=timeout)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    _skip_unless_possible()
    work = tmp_path_factory.mktemp("multihost")
    topology = Topology()
    postgres: Postgres | None = None
    try:
        db, cp, w1, cl = (topology.add_host(n) for n in ("db", "cp", "w1", "cl"))
        postgres = Postgres(db, topology.run_id)
        cp_dir, cp_log = work / "cp", work / "cp.log"
        cp.popen([sys.executable, "-m", "confide", "serve", "--data-dir", str(cp_dir),
                  "--services", "keys,authentication,frontend,scheduler",
                  "--host", cp.address, "--internal-host", cp.address,
                  "--database-url", postgres.url, "--workers", "0",
                  "--executor-timeout", str(LEASE_S),
                  *(x for role, port in PORTS.items() for x in (FLAGS[role], str(port)))],
                 cp_log, env=env())
        wait_for("the control plane", lambda: "confide is serving" in text(cp_log), log=cp_log)
        sim_copy = work / "sim-attester"
        shutil.copytree(cp_dir / "sim-attester", sim_copy)
        yield Cluster(topology, db, cp, w1, cl, postgres, cp_dir, cp_log, sim_copy, work)
    finally:
        for host in reversed(list(topology.hosts.values())):
            if host.name != "db":
                host.stop_all()
        if postgres is not None:
            postgres.stop()
        topology.close()
