"""Throughput and CPU per role of the multi-host topology (issue 12 acceptance).

Builds the hosts of ``tests/multihost`` (network namespaces joined by veth pairs
to a bridge; needs root, iproute2 and a PostgreSQL server install) with every
role in a process of its own: ``db`` (a PostgreSQL of its own), ``keys``,
``auth``, ``fe1`` and ``fe2`` (two frontend replicas), ``sched`` (the
scheduler), ``w1`` and ``w2`` (``confide worker``) and ``cl`` (the clients,
``bench/_multihost_load.py``). ``--clients`` sequential clients (threads in
``--procs`` processes, spread over the frontends) run ``--tasks`` builtin-echo
tasks, CreateTask → InvokeTask → WaitTask, per run.

For each run it prints tasks/s, create→result p50/p95, and per role the CPU
seconds its process trees used in the timed window (utime+stime of every live
process in the tree, plus cutime+cstime: children that ended and were reaped),
the CPU milliseconds per task, and a LINEAR PROJECTION of the cores that role
needs per 1,000 tasks/s (CPU seconds per task times 1,000). Every host shares this
machine's cores, so the task rate measured here is bounded by their sum; the
projection assumes cost per task stays constant with load (no batching gains,
no contention losses). With ``--runs`` above 1 it ends with the medians.

Run (as root): ``python bench/multihost.py [--tasks 1000] [--clients 16]
[--runs 3] [--procs 4] [--worker-procs 1] [--json FILE]``. Not part of
``make bench``, which runs without root.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _speed import speed_line  # bench/ is on sys.path when run as a script

from tests.multihost._netns import Host, Topology
from tests.multihost.conftest import FLAGS, PORTS, Postgres, env, text, wait_for

_TICK = os.sysconf("SC_CLK_TCK")
LOAD = Path(__file__).with_name("_multihost_load.py")
#: Table rows, in order: role name → the hosts whose process trees it sums.
ROLES = ("db", "keys", "authentication", "frontend", "scheduler", "workers", "clients")


def missing_prerequisites() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None or shutil.which("runuser") is None:
        return "needs iproute2 and runuser"
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        return "needs a PostgreSQL server install (/usr/lib/postgresql/*/bin)"
    return None


# -- CPU time of process trees, from /proc ------------------------------------

def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds incl. reaped children) of a live process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    # after the comm: state ppid ... utime(11) stime(12) cutime(13) cstime(14)
    return int(fields[1]), sum(int(f) for f in fields[11:15]) / _TICK


def tree_cpu(roots: list[int]) -> float:
    """CPU seconds so far of ``roots`` and all their descendants."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (s := _stat(int(entry))) is not None:
            stats[int(entry)] = s
    children: dict[int, list[int]] = {}
    for pid, (ppid, _cpu) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo, seen = 0.0, [r for r in roots if r in stats], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += stats[pid][1]
        todo += children.get(pid, [])
    return total


# -- the topology ---------------------------------------------------------------

@dataclass
class Platform:
    topology: Topology
    work: Path
    postgres: Postgres | None = None
    hosts: dict[str, Host] = field(default_factory=dict)
    pids: dict[str, list[int]] = field(default_factory=dict)  # role → root pids

    def endpoint(self, host: str, role: str) -> str:
        """``HOST:PORT:CERT`` of a client API (the node's own pinned certificate)."""
        cert = self.work / host / "api-cert.pem"
        return f"{self.hosts[host].address}:{PORTS[role]}:{cert}"

    def role_pids(self, role: str) -> list[int]:
        if role == "db":
            assert self.postgres is not None
            return [int((self.postgres.data / "postmaster.pid").read_text().split()[0])]
        return self.pids.get(role, [])


def _serve(platform: Platform, name: str, role: str, keys: Host | None,
           sim: Path | None) -> None:
    host = platform.hosts[name]
    log = platform.work / f"{name}.log"
    assert platform.postgres is not None
    args = [sys.executable, "-m", "confide", "serve", "--data-dir", str(platform.work / name),
            "--services", role, "--host", host.address, "--internal-host", host.address,
            "--database-url", platform.postgres.url, "--workers", "0",
            "--executor-timeout", "60", FLAGS[role], str(PORTS[role])]
    if keys is not None and sim is not None:
        args += ["--keys", f"{keys.address}:{PORTS['keys']}", "--sim-attester", str(sim)]
    proc = host.popen(args, log, env=env())
    wait_for(f"the {role} node on {name}", lambda: "confide is serving" in text(log),
             timeout=180, log=log)
    platform.pids.setdefault(role, []).append(proc.pid)


def start(platform: Platform, frontends: int, worker_procs: int) -> None:
    topo = platform.topology
    names = ["db", "keys", "auth", *(f"fe{i + 1}" for i in range(frontends)), "sched",
             "w1", "w2", "cl"]
    for name in names:
        platform.hosts[name] = topo.add_host(name)
    platform.postgres = Postgres(platform.hosts["db"], topo.run_id)
    _serve(platform, "keys", "keys", None, None)
    sim = platform.work / "sim-attester"  # what an operator copies to every other host
    shutil.copytree(platform.work / "keys" / "sim-attester", sim)
    keys = platform.hosts["keys"]
    _serve(platform, "auth", "authentication", keys, sim)
    for i in range(frontends):
        _serve(platform, f"fe{i + 1}", "frontend", keys, sim)
    _serve(platform, "sched", "scheduler", keys, sim)
    sched = platform.hosts["sched"]
    for name in ("w1", "w2"):
        log = platform.work / f"{name}.log"
        proc = platform.hosts[name].popen(
            [sys.executable, "-m", "confide", "worker", "--scheduler",
             f"{sched.address}:{PORTS['scheduler']}", "--keys",
             f"{keys.address}:{PORTS['keys']}", "--sim-attester", str(sim), "--name", name,
             "--workers", str(worker_procs)], log, env=env())
        platform.pids.setdefault("workers", []).append(proc.pid)
    for name in ("w1", "w2"):
        log, said = platform.work / f"{name}.log", f"enrolled as {name}/executor-"
        wait_for(f"{name}'s workers to enrol",
                 lambda log=log, said=said: text(log).count(said) >= worker_procs,
                 timeout=180, log=log)


def stop(platform: Platform) -> None:
    for host in reversed(list(platform.topology.hosts.values())):
        if host.name != "db":
            host.stop_all()
    if platform.postgres is not None:
        platform.postgres.stop()
    platform.topology.close()


# -- one run --------------------------------------------------------------------

@dataclass
class Run:
    tasks: int
    failed: int
    seconds: float
    latencies_s: list[float]
    cpu_s: dict[str, float]  # role → CPU seconds in the timed window

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds

    def pct_ms(self, p: float) -> float:
        xs = sorted(self.latencies_s)
        return 1000 * xs[min(len(xs) - 1, int(p * len(xs)))]

    def ms_per_task(self, role: str) -> float:
        return 1000 * self.cpu_s[role] / self.tasks


def _load_args(platform: Platform, frontends: int) -> list[str]:
    fes = ",".join(platform.endpoint(f"fe{i + 1}", "frontend") for i in range(frontends))
    return [sys.executable, str(LOAD), "load", platform.endpoint("auth", "authentication"), fes]


def setup_function(platform: Platform) -> str:
    cl = platform.hosts["cl"]
    out = cl.run([sys.executable, str(LOAD), "setup",
                  platform.endpoint("auth", "authentication"),
                  platform.endpoint("fe1", "frontend")], env=env(), timeout=300)
    if out.returncode != 0:
        raise SystemExit(f"setting up the echo function failed:\n{out.stderr[-3000:]}")
    return out.stdout.split()[-1]


def one_run(platform: Platform, fid: str, index: int, tasks: int, clients: int, procs: int,
            frontends: int) -> Run:
    cl = platform.hosts["cl"]
    ready, go, result = (platform.work / f"run{index}.{s}" for s in ("ready", "go", "json"))
    log = platform.work / f"clients{index}.log"
    proc = cl.popen([*_load_args(platform, frontends), "--function", fid, "--tasks",
                     str(tasks), "--clients", str(clients), "--procs", str(procs),
                     "--ready", str(ready), "--go", str(go), "--result", str(result)],
                    log, env=env())
    wait_for("the clients to log in", lambda: ready.exists() or proc.poll() is not None,
             timeout=300, log=log)
    if not ready.exists():
        raise SystemExit(f"the clients failed:\n{log.read_text()[-3000:]}")
    pids = {role: platform.role_pids(role) for role in ROLES if role != "clients"}
    pids["clients"] = [proc.pid]
    before = {role: tree_cpu(ids) for role, ids in pids.items()}
    go.write_text("go\n")
    wait_for("the run to finish", lambda: result.exists() or proc.poll() is not None,
             timeout=3600, log=log)
    after = {role: tree_cpu(ids) for role, ids in pids.items()}
    if not result.exists():
        raise SystemExit(f"the clients failed:\n{log.read_text()[-3000:]}")
    proc.wait(60)
    summary = json.loads(result.read_text())
    return Run(summary["ok"], summary["failed"], summary["elapsed_s"], summary["latencies_s"],
               {role: max(0.0, after[role] - before[role]) for role in pids})


def idle_cores(platform: Platform, seconds: float) -> dict[str, float]:
    """CPU cores each role uses with no task running (its background work), over
    ``seconds``: already part of the CPU per task the runs measure."""
    pids = {role: platform.role_pids(role) for role in ROLES if role != "clients"}
    before = {role: tree_cpu(ids) for role, ids in pids.items()}
    t0 = time.monotonic()
    time.sleep(seconds)
    after = {role: tree_cpu(ids) for role, ids in pids.items()}
    elapsed = time.monotonic() - t0
    idle = {role: max(0.0, after[role] - before[role]) / elapsed for role in pids}
    return {**idle, "clients": 0.0, "total": sum(idle.values())}


# -- printing -------------------------------------------------------------------

_LABEL = {"frontend": "frontend ({n} replicas)", "workers": "workers (2 hosts, children)"}


def table(title: str, rate: float, p50: float, p95: float, tasks: int, failed: int,
          cpu_s: dict[str, float], ms: dict[str, float], idle: dict[str, float],
          frontends: int) -> list[str]:
    lines = [title,
             f"  {rate:.1f} tasks/s   create→result p50 {p50:.1f} ms  p95 {p95:.1f} ms   "
             f"({tasks} ok, {failed} failed)",
             f"  {'role':<30}{'CPU s':>8}{'CPU ms/task':>13}{'idle cores':>12}"
             f"{'cores per 1,000 tasks/s (LINEAR PROJECTION)':>46}"]
    for role in (*ROLES, "total"):
        label = _LABEL.get(role, role).format(n=frontends)
        lines.append(f"  {label:<30}{cpu_s[role]:>8.2f}{ms[role]:>13.2f}{idle[role]:>12.3f}"
                     f"{ms[role]:>46.2f}")
    return lines


def run_table(run: Run, title: str, idle: dict[str, float], frontends: int) -> list[str]:
    cpu = {**run.cpu_s, "total": sum(run.cpu_s.values())}
    ms = {role: 1000 * s / run.tasks for role, s in cpu.items()}
    return table(title, run.rate, run.pct_ms(0.5), run.pct_ms(0.95), run.tasks, run.failed,
                 cpu, ms, idle, frontends)


def median_table(runs: list[Run], idle: dict[str, float], frontends: int) -> list[str]:
    med = statistics.median
    cpu = {role: med(r.cpu_s[role] for r in runs) for role in ROLES}
    cpu["total"] = med(sum(r.cpu_s.values()) for r in runs)
    ms = {role: med(1000 * r.cpu_s[role] / r.tasks for r in runs) for role in ROLES}
    ms["total"] = med(1000 * sum(r.cpu_s.values()) / r.tasks for r in runs)
    return table(f"median of {len(runs)} runs", med(r.rate for r in runs),
                 med(r.pct_ms(0.5) for r in runs), med(r.pct_ms(0.95) for r in runs),
                 int(med(r.tasks for r in runs)), int(med(r.failed for r in runs)), cpu, ms,
                 idle, frontends)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1000, help="tasks per run")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--runs", type=int, default=3, help="timed runs (medians printed)")
    parser.add_argument("--procs", type=int, default=4, help="client processes")
    parser.add_argument("--frontends", type=int, default=2, help="frontend replicas")
    parser.add_argument("--worker-procs", type=int, default=1,
                        help="worker processes on each of the 2 worker hosts")
    parser.add_argument("--idle", type=float, default=5.0,
                        help="seconds of the idle baseline (no tasks) before the runs")
    parser.add_argument("--json", type=Path, help="also write the runs as JSON here")
    args = parser.parse_args()
    if (why := missing_prerequisites()) is not None:
        raise SystemExit(f"bench/multihost.py {why}")
    print(speed_line(), flush=True)
    work = Path(tempfile.mkdtemp(prefix="confide-mhbench-"))
    try:
        platform = Platform(Topology(), work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    try:
        t0 = time.monotonic()
        start(platform, args.frontends, args.worker_procs)
        fid = setup_function(platform)
        print(f"topology up in {time.monotonic() - t0:.0f} s: "
              + ", ".join(f"{h.name} {h.address}" for h in platform.hosts.values()),
              flush=True)
        # A short unreported run first: connections, caches, the database's plans.
        one_run(platform, fid, 0, max(2 * args.clients, 32), args.clients, args.procs,
                args.frontends)
        idle = idle_cores(platform, args.idle)
        runs = []
        for i in range(1, args.runs + 1):
            run = one_run(platform, fid, i, args.tasks, args.clients, args.procs,
                          args.frontends)
            runs.append(run)
            print("\n".join(run_table(run, f"run {i}: {args.tasks} builtin-echo tasks, "
                                      f"{args.clients} clients", idle, args.frontends)), flush=True)
        if len(runs) > 1:
            print("\n".join(median_table(runs, idle, args.frontends)))
        print("cores per 1,000 tasks/s is a LINEAR PROJECTION: CPU seconds per task times 1,000, "
              "assuming the cost per task stays constant with load; every host here shares "
              f"this machine's {os.cpu_count()} cores.")
        if args.json is not None:
            args.json.write_text(json.dumps({"runs": [
                {"tasks": r.tasks, "failed": r.failed, "seconds": r.seconds,
                 "tasks_per_s": r.rate, "p50_ms": r.pct_ms(0.5), "p95_ms": r.pct_ms(0.95),
                 "cpu_s": r.cpu_s, "idle_cores": idle,
                 "cpu_ms_per_task": {k: r.ms_per_task(k) for k in ROLES}} for r in runs]}))
    finally:
        stop(platform)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
