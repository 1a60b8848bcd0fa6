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
the CPU milliseconds per task, the role's idle CPU (cores used with no task, over
``--idle`` seconds before the runs), and a LINEAR PROJECTION of the cores that
role needs per 1,000 tasks/s (CPU seconds per task times 1,000). Every host
shares this machine's cores, so the task rate measured here is bounded by their
sum; the projection assumes cost per task stays constant with load (no batching
gains, no contention losses). With ``--runs`` above 1 it ends with the medians.

Baseline in the same run (``--no-baseline`` skips it): all-in-one ``confide
serve`` (every role in one process, as many local workers as the worker hosts
have) on a host of its own, with a database of its own on the same PostgreSQL
server, loaded by the same clients; its runs alternate with the multi-host runs
(ABBA), and the ratio of the medians is printed.

Run (as root): ``python bench/multihost.py [--tasks 1000] [--clients 16]
[--runs 3] [--procs 4] [--frontends 2] [--worker-procs 1] [--no-baseline]
[--json FILE]``. Not part of ``make bench``, which runs without root.
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
AIO_DB = "confide_aio"  # the baseline's database, on the same PostgreSQL server


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
class Target:
    """What the clients load: endpoints (``HOST:PORT:CERT``) and the process trees of each
    table row (in order; ``clients`` is added per run)."""

    title: str
    auth: str
    frontends: list[str]
    rows: dict[str, list[int]]


@dataclass
class Platform:
    topology: Topology
    work: Path
    postgres: Postgres | None = None
    hosts: dict[str, Host] = field(default_factory=dict)

    def endpoint(self, host: str, role: str) -> str:
        """``HOST:PORT:CERT`` of a client API (the node's own pinned certificate)."""
        cert = self.work / host / "api-cert.pem"
        return f"{self.hosts[host].address}:{PORTS[role]}:{cert}"

    def db_pid(self) -> int:
        assert self.postgres is not None
        return int((self.postgres.data / "postmaster.pid").read_text().split()[0])


def _serve(platform: Platform, name: str, args: list[str]) -> int:
    host = platform.hosts[name]
    log = platform.work / f"{name}.log"
    proc = host.popen([sys.executable, "-m", "confide", "serve", "--data-dir",
                       str(platform.work / name), "--host", host.address, "--internal-host",
                       host.address, "--executor-timeout", "60", *args], log, env=env())
    wait_for(f"the node on {name}", lambda: "confide is serving" in text(log),
             timeout=180, log=log)
    return proc.pid


def _role(platform: Platform, name: str, role: str, keys: Host | None,
          sim: Path | None) -> int:
    assert platform.postgres is not None
    args = ["--services", role, "--database-url", platform.postgres.url, "--workers", "0",
            FLAGS[role], str(PORTS[role])]
    if keys is not None and sim is not None:
        args += ["--keys", f"{keys.address}:{PORTS['keys']}", "--sim-attester", str(sim)]
    return _serve(platform, name, args)


def start_split(platform: Platform, frontends: int, worker_procs: int) -> Target:
    """Every role in a process of its own on a host of its own."""
    topo = platform.topology
    names = ["keys", "auth", *(f"fe{i + 1}" for i in range(frontends)), "sched", "w1", "w2"]
    for name in names:
        platform.hosts[name] = topo.add_host(name)
    rows: dict[str, list[int]] = {"db": [platform.db_pid()]}
    rows["keys"] = [_role(platform, "keys", "keys", None, None)]
    sim = platform.work / "sim-attester"  # what an operator copies to every other host
    shutil.copytree(platform.work / "keys" / "sim-attester", sim)
    keys = platform.hosts["keys"]
    rows["authentication"] = [_role(platform, "auth", "authentication", keys, sim)]
    rows[f"frontend ({frontends} replica{'s' if frontends != 1 else ''})"] = [
        _role(platform, f"fe{i + 1}", "frontend", keys, sim) for i in range(frontends)]
    rows["scheduler"] = [_role(platform, "sched", "scheduler", keys, sim)]
    sched = platform.hosts["sched"]
    workers = []
    for name in ("w1", "w2"):
        log = platform.work / f"{name}.log"
        workers.append(platform.hosts[name].popen(
            [sys.executable, "-m", "confide", "worker", "--scheduler",
             f"{sched.address}:{PORTS['scheduler']}", "--keys",
             f"{keys.address}:{PORTS['keys']}", "--sim-attester", str(sim), "--name", name,
             "--workers", str(worker_procs)], log, env=env()).pid)
    rows["workers (2 hosts, children)"] = workers
    for name in ("w1", "w2"):
        log, said = platform.work / f"{name}.log", f"enrolled as {name}/executor-"
        wait_for(f"{name}'s workers to enrol",
                 lambda log=log, said=said: text(log).count(said) >= worker_procs,
                 timeout=180, log=log)
    return Target("multi-host (every role on its own host)",
                  platform.endpoint("auth", "authentication"),
                  [platform.endpoint(f"fe{i + 1}", "frontend") for i in range(frontends)], rows)


def start_all_in_one(platform: Platform, workers: int) -> Target:
    """The baseline: ``confide serve`` with every role in one process and its local
    workers, on a host of its own, with a database of its own on the same server."""
    assert platform.postgres is not None
    pg = platform.postgres
    out = platform.hosts["db"].run([str(pg.bin / "psql"), "-h", pg.host.address, "-U",
                                    "postgres", "-d", "postgres", "-c",
                                    f"CREATE DATABASE {AIO_DB}"], timeout=60)
    if out.returncode != 0:
        raise SystemExit(f"creating the baseline's database failed: {out.stderr}")
    platform.hosts["aio"] = platform.topology.add_host("aio")
    url = pg.url.rsplit("/", 1)[0] + "/" + AIO_DB
    pid = _serve(platform, "aio", ["--database-url", url, "--workers", str(workers)])
    return Target(f"baseline: all-in-one confide serve ({workers} local workers)",
                  platform.endpoint("aio", "authentication"),
                  [platform.endpoint("aio", "frontend")],
                  {"db": [platform.db_pid()],
                   f"all-in-one (every role, {workers} workers)": [pid]})


def start(platform: Platform) -> None:
    for name in ("db", "cl"):
        platform.hosts[name] = platform.topology.add_host(name)
    platform.postgres = Postgres(platform.hosts["db"], platform.topology.run_id)


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
    cpu_s: dict[str, float]  # table row → CPU seconds in the timed window

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds

    def pct_ms(self, p: float) -> float:
        xs = sorted(self.latencies_s)
        return 1000 * xs[min(len(xs) - 1, int(p * len(xs)))]

    def ms_per_task(self, row: str) -> float:
        return 1000 * self.cpu_s[row] / self.tasks


def setup_function(platform: Platform, target: Target) -> str:
    out = platform.hosts["cl"].run([sys.executable, str(LOAD), "setup", target.auth,
                                    target.frontends[0]], env=env(), timeout=300)
    if out.returncode != 0:
        raise SystemExit(f"setting up the echo function failed:\n{out.stderr[-3000:]}")
    return out.stdout.split()[-1]


def one_run(platform: Platform, target: Target, fid: str, name: str, tasks: int,
            clients: int, procs: int) -> Run:
    ready, go, result = (platform.work / f"{name}.{s}" for s in ("ready", "go", "json"))
    log = platform.work / f"{name}.log"
    proc = platform.hosts["cl"].popen(
        [sys.executable, str(LOAD), "load", target.auth, ",".join(target.frontends),
         "--function", fid, "--tasks", str(tasks), "--clients", str(clients), "--procs",
         str(procs), "--ready", str(ready), "--go", str(go), "--result", str(result)],
        log, env=env())
    wait_for("the clients to log in", lambda: ready.exists() or proc.poll() is not None,
             timeout=300, log=log)
    if not ready.exists():
        raise SystemExit(f"the clients failed:\n{log.read_text()[-3000:]}")
    pids = {**target.rows, "clients": [proc.pid]}
    before = {row: tree_cpu(ids) for row, ids in pids.items()}
    go.write_text("go\n")
    wait_for("the run to finish", lambda: result.exists() or proc.poll() is not None,
             timeout=3600, log=log)
    after = {row: tree_cpu(ids) for row, ids in pids.items()}
    if not result.exists():
        raise SystemExit(f"the clients failed:\n{log.read_text()[-3000:]}")
    proc.wait(60)
    summary = json.loads(result.read_text())
    return Run(summary["ok"], summary["failed"], summary["elapsed_s"], summary["latencies_s"],
               {row: max(0.0, after[row] - before[row]) for row in pids})


def idle_cores(targets: list[Target], seconds: float) -> list[dict[str, float]]:
    """CPU cores each row uses with no task running (its background work), over
    ``seconds``, for every target at once: already part of the CPU per task the
    runs measure. The db row is the whole server (every target's database)."""
    before = [{row: tree_cpu(ids) for row, ids in t.rows.items()} for t in targets]
    t0 = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - t0
    idle = []
    for target, b in zip(targets, before, strict=True):
        cores = {row: max(0.0, tree_cpu(ids) - b[row]) / elapsed
                 for row, ids in target.rows.items()}
        idle.append({**cores, "clients": 0.0, TOTAL: sum(cores.values())})
    return idle


# -- printing -------------------------------------------------------------------

def table(title: str, rate: float, p50: float, p95: float, tasks: int, failed: int,
          cpu_s: dict[str, float], ms: dict[str, float], idle: dict[str, float]) -> list[str]:
    lines = [title,
             f"  {rate:.1f} tasks/s   create→result p50 {p50:.1f} ms  p95 {p95:.1f} ms   "
             f"({tasks} ok, {failed} failed)",
             f"  {'role':<38}{'CPU s':>8}{'CPU ms/task':>13}{'idle cores':>12}"
             f"{'cores per 1,000 tasks/s (LINEAR PROJECTION)':>46}"]
    for row in cpu_s:
        lines.append(f"  {row:<38}{cpu_s[row]:>8.2f}{ms[row]:>13.2f}{idle[row]:>12.3f}"
                     f"{ms[row]:>46.2f}")
    return lines


TOTAL = "platform (every row but clients)"


def _platform_s(cpu_s: dict[str, float]) -> float:
    return sum(s for row, s in cpu_s.items() if row != "clients")


def _with_total(d: dict[str, float], total: float) -> dict[str, float]:
    return {**d, TOTAL: total}


def run_table(run: Run, title: str, idle: dict[str, float]) -> list[str]:
    cpu = _with_total(run.cpu_s, _platform_s(run.cpu_s))
    ms = {row: 1000 * s / run.tasks for row, s in cpu.items()}
    return table(title, run.rate, run.pct_ms(0.5), run.pct_ms(0.95), run.tasks, run.failed,
                 cpu, ms, idle)


def median_table(title: str, runs: list[Run], idle: dict[str, float]) -> list[str]:
    med = statistics.median
    rows = list(runs[0].cpu_s)
    cpu = _with_total({row: med(r.cpu_s[row] for r in runs) for row in rows},
                      med(_platform_s(r.cpu_s) for r in runs))
    ms = _with_total({row: med(r.ms_per_task(row) for r in runs) for row in rows},
                     med(1000 * _platform_s(r.cpu_s) / r.tasks for r in runs))
    return table(f"{title}: median of {len(runs)} runs", med(r.rate for r in runs),
                 med(r.pct_ms(0.5) for r in runs), med(r.pct_ms(0.95) for r in runs),
                 int(med(r.tasks for r in runs)), int(med(r.failed for r in runs)), cpu, ms,
                 idle)


def _json(target: Target, runs: list[Run], idle: dict[str, float]) -> dict[str, object]:
    return {"title": target.title, "idle_cores": idle, "runs": [
        {"tasks": r.tasks, "failed": r.failed, "seconds": r.seconds, "tasks_per_s": r.rate,
         "p50_ms": r.pct_ms(0.5), "p95_ms": r.pct_ms(0.95), "cpu_s": r.cpu_s,
         "cpu_ms_per_task": {row: r.ms_per_task(row) for row in r.cpu_s}} for r in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1000, help="tasks per run")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--runs", type=int, default=3, help="timed runs (medians printed)")
    parser.add_argument("--procs", type=int, default=4, help="client processes")
    parser.add_argument("--frontends", type=int, default=2, help="frontend replicas")
    parser.add_argument("--worker-procs", type=int, default=1,
                        help="worker processes on each of the 2 worker hosts")
    parser.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True,
                        help="also run all-in-one confide serve, alternating with the "
                             "multi-host runs (ABBA)")
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
        start(platform)
        targets = [start_split(platform, args.frontends, args.worker_procs)]
        if args.baseline:
            targets.append(start_all_in_one(platform, 2 * args.worker_procs))
        fids = [setup_function(platform, t) for t in targets]
        print(f"topology up in {time.monotonic() - t0:.0f} s: "
              + ", ".join(f"{h.name} {h.address}" for h in platform.hosts.values()),
              flush=True)
        # A short unreported run first: connections, caches, the database's plans.
        for k, (target, fid) in enumerate(zip(targets, fids, strict=True)):
            one_run(platform, target, fid, f"warm{k}", max(2 * args.clients, 32),
                    args.clients, args.procs)
        idle = idle_cores(targets, args.idle)
        runs: list[list[Run]] = [[] for _ in targets]
        for i in range(1, args.runs + 1):
            order = list(range(len(targets)))
            if i % 2 == 0:
                order.reverse()  # ABBA: neither always runs first
            for k in order:
                run = one_run(platform, targets[k], fids[k], f"run{i}-{k}", args.tasks,
                              args.clients, args.procs)
                runs[k].append(run)
                print("\n".join(run_table(run, f"run {i}, {targets[k].title}: {args.tasks} "
                                          f"builtin-echo tasks, {args.clients} clients",
                                          idle[k])), flush=True)
        if args.runs > 1:
            for target, rs, idl in zip(targets, runs, idle, strict=True):
                print("\n".join(median_table(target.title, rs, idl)))
        if len(targets) == 2:
            med = statistics.median
            rate = [med(r.rate for r in rs) for rs in runs]
            cpu = [med(_platform_s(r.cpu_s) / r.tasks for r in rs) for rs in runs]
            print(f"multi-host vs all-in-one (medians): tasks/s {rate[0] / rate[1]:.2f}x, "
                  f"platform CPU per task {cpu[0] / cpu[1]:.2f}x")
        print("cores per 1,000 tasks/s is a LINEAR PROJECTION: CPU seconds per task times "
              "1,000, assuming the cost per task stays constant with load; every host here "
              f"shares this machine's {os.cpu_count()} cores.")
        if args.json is not None:
            args.json.write_text(json.dumps({"targets": [
                _json(t, rs, idl) for t, rs, idl in zip(targets, runs, idle, strict=True)]}))
    finally:
        stop(platform)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
