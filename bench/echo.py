"""Create→result latency and throughput of builtin-echo tasks (issue: platform core).

Starts ``confide serve`` (as the README does) with 1 and then 2 workers, and
measures from the client side over the network:

* latency: one client, sequential CreateTask → InvokeTask → WaitTask; p50/p95;
* throughput: several client processes with several threads each, running
  tasks end to end for a fixed number of tasks; tasks/s.

Plain baselines in the same run: the round trip of the cheapest
authenticated RPC (GetTask), and the rate of empty unary RPCs that confide's
own gRPC server stack (``build_server``: TLS, event loop, interceptor) serves
to the same client shape. A task costs at least four RPCs (CreateTask,
InvokeTask, WaitTask; one ReportAndPull of the worker), so a quarter of that
rate is the ceiling any task rate on this stack can reach.

Throughput is timed from the moment every client process is connected and
logged in, and CPU time is read from /proc for the server, its workers and the
load-generating clients over that window, as milliseconds of CPU per task:
all of them share this machine's cores.

Metrics A/B (issue 13): the same throughput run against ``confide serve``
without and with ``--metrics-address`` (every RPC, transaction and task
recorded; the endpoint scraped every 5 s meanwhile), alternating off/on and
on/off (ABBA) for ``--ab-rounds`` rounds in one run so both see the same
machine; the medians and their difference are printed.

Each configuration runs on SQLite (the default) and on PostgreSQL (a database of
its own, created on ``--pg-admin-url``'s server and dropped afterwards) in the
same run, and the ratio of their task rates is printed (``--databases`` picks).

Run: ``python bench/echo.py [--tasks 2000] [--procs 4] [--threads 8] [--ab-rounds 3]
[--databases sqlite,postgresql] [--workers 1,2]``
(``--ab-only`` skips everything but the A/B). Prints one figure per line with its unit.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc
from _speed import speed_line  # bench/ is on sys.path when run as a script

from confide.api import RpcLoop, build_server, inline
from confide.client import Client, FunctionArgument
from confide.rpc._gen import teaclave_frontend_service_pb2 as pb
from confide.rpc._tls import api_certificate
from tests.platform._server import Server, free_port

_TICK = os.sysconf("SC_CLK_TCK")


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def _client(ports: dict[str, int], cert: Path) -> Client:
    c = Client.connect("127.0.0.1", server_cert=cert, authentication_port=ports["authentication"],
                       frontend_port=ports["frontend"])
    c.login("admin", "teaclave")
    return c


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _postgres_cpu_seconds() -> float:
    """CPU time of every PostgreSQL process on this machine so far, the ones that
    exited included (their time is in the postmaster's children fields)."""
    procs: dict[str, list[str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            comm, rest = stat.read_text().split("(", 1)[1].rsplit(")", 1)
        except (OSError, ValueError):  # the process exited meanwhile
            continue
        if comm == "postgres":
            procs[stat.parent.name] = rest.split()
    total = 0
    for fields in procs.values():
        postmaster = fields[1] not in procs  # its parent is not a postgres process
        total += sum(int(f) for f in fields[11:15 if postmaster else 13])
    return total / _TICK


def _split(n: int, parts: int) -> list[int]:
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


def _threads(count: int, threads: int, one: Callable[[], bool]) -> int:
    """Run ``one`` ``count`` times over ``threads`` threads; how many returned True."""
    ok = [0]
    lock = threading.Lock()

    def run(k: int) -> None:
        for _ in range(k):
            if one():
                with lock:
                    ok[0] += 1

    ts = [threading.Thread(target=run, args=(k,)) for k in _split(count, threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return ok[0]


def _load(ports: dict[str, int], cert: str, fid: str, n: int, threads: int,
          ready: Any, out: mp.Queue) -> None:  # type: ignore[type-arg]
    client = _client(ports, Path(cert))

    def one() -> bool:
        tid = client.create_task(fid, {"message": "x"}, executor="builtin")
        client.invoke_task(tid)
        return client.wait(tid, 60).ok

    ready.wait()
    out.put(_threads(n, threads, one))


def _run_clients(target: Callable[..., None], args: tuple[Any, ...], total: int, procs: int,
                 threads: int, watched: list[int], *, database: bool = False
                 ) -> tuple[int, float, dict[str, float]]:
    """Start ``procs`` client processes, time them from when all are ready.

    Returns (completed, seconds, CPU seconds by role over that window); with
    ``database``, the local PostgreSQL server's processes are a role too.
    """
    ready = mp.Barrier(procs + 1)
    q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    ps = [mp.Process(target=target, args=(*args, n, threads, ready, q))
          for n in _split(total, procs)]
    for p in ps:
        p.start()
    ready.wait()
    pids = {"clients": [p.pid for p in ps if p.pid is not None]}
    if watched:
        pids["server"], pids["workers"] = watched[:1], watched[1:]

    def cpu() -> dict[str, float]:
        seconds = {role: sum(_cpu_seconds(pid) for pid in ids) for role, ids in pids.items()}
        if database:
            seconds["database"] = _postgres_cpu_seconds()
        return seconds

    before = cpu()
    t0 = time.perf_counter()
    done = sum(q.get() for _ in ps)
    elapsed = time.perf_counter() - t0
    after = cpu()
    for p in ps:
        p.join()
    return done, elapsed, {role: after[role] - before[role] for role in after}


def _floor_server(cert_key: tuple[bytes, bytes], port_out: mp.Queue,  # type: ignore[type-arg]
                  metrics: bool = False) -> None:
    rpc = RpcLoop()
    server = build_server(rpc, max_message_bytes=1 << 20, metrics=metrics)
    handler = grpc.method_handlers_generic_handler(
        "bench.Floor", {"Empty": grpc.unary_unary_rpc_method_handler(
            inline(lambda req, ctx: req), request_deserializer=pb.GetTaskRequest.FromString,
            response_serializer=pb.GetTaskRequest.SerializeToString)})
    server.add_generic_rpc_handlers((handler,))
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([cert_key]))
    rpc.run(server.start())
    port_out.put(port)
    threading.Event().wait()


def _floor_load(port: int, cert: bytes, n: int, threads: int, ready: Any,
                out: mp.Queue) -> None:  # type: ignore[type-arg]
    channel = grpc.secure_channel(f"127.0.0.1:{port}", grpc.ssl_channel_credentials(cert),
                                  options=[("grpc.ssl_target_name_override", "CN=Teaclave")])
    empty = channel.unary_unary("/bench.Floor/Empty",
                                request_serializer=pb.GetTaskRequest.SerializeToString,
                                response_deserializer=pb.GetTaskRequest.FromString)
    request = pb.GetTaskRequest(task_id="task-" + "0" * 36)
    empty(request)  # connect before the clock starts

    def one() -> bool:
        return bool(empty(request) == request)

    ready.wait()
    out.put(_threads(n, threads, one))


def floor(rpcs: int, procs: int, threads: int, *, metrics: bool = False) -> tuple[float, float]:
    """Empty unary RPCs on confide's gRPC server stack: (RPCs per second,
    server CPU milliseconds per RPC)."""
    pair = api_certificate(dt.datetime.now(dt.UTC))
    ports: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    server = mp.Process(target=_floor_server,
                        args=((pair.key_pem, pair.cert_pem), ports, metrics))
    server.start()
    try:
        port = ports.get(timeout=30)
        assert server.pid is not None
        done, elapsed, cpu = _run_clients(_floor_load, (port, pair.cert_pem), rpcs, procs,
                                          threads, [server.pid])
    finally:
        server.terminate()
        server.join()
    return done / elapsed, cpu["server"] * 1000 / max(done, 1)


def _scrape_every(url: str, period: float, stop: threading.Event) -> None:
    """What a Prometheus server does, faster than its usual 15 s."""
    import httpx

    while not stop.wait(period):
        httpx.get(url, timeout=10)


def throughput(workers: int, tasks: int, procs: int, threads: int, *,
               metrics: bool) -> tuple[float, float]:
    """One end-to-end load run, with or without metrics: (tasks/s, CPU ms per task of
    the server and its workers)."""
    args = ["--metrics-address", f"127.0.0.1:{free_port()}"] if metrics else []
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "data", workers=workers, extra_args=args).start()
        stop = threading.Event()
        try:
            cert = server.data_dir / "api-cert.pem"
            c = _client(server.ports, cert)
            fid = c.register_function("builtin-echo", executor_type="builtin",
                                      arguments=[FunctionArgument("message")])
            time.sleep(1.0)  # let the workers connect
            warm = c.create_task(fid, {"message": "w"}, executor="builtin")
            c.invoke_task(warm)
            c.wait(warm, 60)
            if metrics:
                threading.Thread(target=_scrape_every, daemon=True, args=(
                    f"http://{args[1]}/metrics", 5.0, stop)).start()
            assert server.proc is not None
            watched = [server.proc.pid, *server.worker_pids()]
            done, elapsed, cpu = _run_clients(_load, (server.ports, str(cert), fid), tasks,
                                              procs, threads, watched)
        finally:
            stop.set()
            server.stop()
    return done / elapsed, (cpu["server"] + cpu["workers"]) * 1000 / max(done, 1)


def _ab_lines(what: str, unit: str, rates: dict[bool, list[float]], digits: int = 0) -> None:
    off, on = statistics.median(rates[False]), statistics.median(rates[True])
    print(f"  {what} ({unit})")
    print("    metrics off " + " ".join(f"{r:.{digits}f}" for r in rates[False]))
    print("    metrics on  " + " ".join(f"{r:.{digits}f}" for r in rates[True]))
    print(f"    median off {off:.{digits}f}, on {on:.{digits}f}: "
          f"{(on - off) / off * 100:+.1f} % with metrics")


def metrics_ab(workers: int, tasks: int, procs: int, threads: int, rounds: int) -> None:
    rates: dict[bool, list[float]] = {False: [], True: []}
    task_cpu: dict[bool, list[float]] = {False: [], True: []}
    empty: dict[bool, list[float]] = {False: [], True: []}
    empty_cpu: dict[bool, list[float]] = {False: [], True: []}
    # The empty-RPC servers first: a process forked after this one opened gRPC
    # channels (the task runs' clients) can hang in gRPC's fork handlers.
    # ABBA: off-on, then on-off, so a drift in the machine's load favours neither.
    orders = [(False, True) if r % 2 == 0 else (True, False) for r in range(rounds)]
    for order in orders:
        for metrics in order:
            rps, cpu_ms = floor(tasks * 4, procs, threads, metrics=metrics)
            empty[metrics].append(rps)
            empty_cpu[metrics].append(cpu_ms * 1000)
    for order in orders:
        for metrics in order:
            rate, cpu_ms = throughput(workers, tasks, procs, threads, metrics=metrics)
            rates[metrics].append(rate)
            task_cpu[metrics].append(cpu_ms)
    print(f"metrics A/B ({rounds} rounds, off and on alternating, ABBA)")
    _ab_lines(f"empty RPCs on the interceptor alone ({tasks * 4} per run)", "RPC/s", empty)
    _ab_lines("  the same, server CPU", "µs per RPC", empty_cpu)
    _ab_lines(f"builtin-echo tasks end to end ({workers} workers, {tasks} per run)", "tasks/s",
              rates)
    _ab_lines("  the same, CPU of the server and its workers", "ms per task", task_cpu, 2)


def bench(workers: int, tasks: int, procs: int, threads: int, latency_n: int,
          empty_rps: float, database: str = "sqlite") -> float:
    """One configuration; prints its figures and returns its tasks/s."""
    with tempfile.TemporaryDirectory() as tmp, _database(database) as url:
        server = Server(Path(tmp) / "data", workers=workers, database_url=url).start()
        try:
            cert = server.data_dir / "api-cert.pem"
            c = _client(server.ports, cert)
            fid = c.register_function("builtin-echo", executor_type="builtin",
                                      arguments=[FunctionArgument("message")])
            time.sleep(1.0)  # let the workers connect
            warm = c.create_task(fid, {"message": "w"}, executor="builtin")
            c.invoke_task(warm)
            c.wait(warm, 60)
            rpc = []
            for _ in range(200):
                t0 = time.perf_counter()
                c.get_task(warm)
                rpc.append((time.perf_counter() - t0) * 1000)
            lat = []
            for _ in range(latency_n):
                t0 = time.perf_counter()
                tid = c.create_task(fid, {"message": "x"}, executor="builtin")
                c.invoke_task(tid)
                c.wait(tid, 60)
                lat.append((time.perf_counter() - t0) * 1000)
            assert server.proc is not None
            watched = [server.proc.pid, *server.worker_pids()]
            done, elapsed, cpu = _run_clients(_load, (server.ports, str(cert), fid), tasks,
                                              procs, threads, watched,
                                              database=database == "postgresql")
        finally:
            server.stop()
    rate = done / elapsed
    print(f"{database}, workers {workers}")
    print(f"  GetTask round trip p50 {statistics.median(rpc):.2f} ms")
    if lat:
        print(f"  create→result p50 {_pct(lat, 0.5):.1f} ms")
        print(f"  create→result p95 {_pct(lat, 0.95):.1f} ms")
        print(f"  create→result p50 / GetTask p50 "
              f"{_pct(lat, 0.5) / statistics.median(rpc):.1f} x")
    else:
        print("  create→result not measured (--latency 0)")
    print(f"  throughput {rate:.0f} tasks/s ({done} tasks, {procs}x{threads} clients)")
    print(f"  throughput / (empty RPC floor / 4) {rate / (empty_rps / 4):.2f}")
    for role, seconds in cpu.items():
        print(f"  CPU {role} {seconds * 1000 / max(done, 1):.2f} ms/task")
    total = sum(cpu.values()) * 1000 / max(done, 1)
    print(f"  CPU all {total:.2f} ms/task ({sum(cpu.values()) / elapsed:.2f} of "
          f"{os.cpu_count()} cores busy)")
    return rate


@contextlib.contextmanager
def _database(kind: str) -> Iterator[str | None]:
    """``sqlite``: the server's default (None); ``postgresql``: a fresh database of its own
    on the local server (``--pg-admin-url``), dropped afterwards."""
    if kind == "sqlite":
        yield None
        return
    from sqlalchemy import create_engine, make_url, text

    name = f"confide_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(_PG_ADMIN_URL[0], isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(_PG_ADMIN_URL[0]).set(database=name).render_as_string(
            hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


_PG_ADMIN_URL = ["postgresql+psycopg://postgres@127.0.0.1:5432/test"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--latency", type=int, default=200)
    ap.add_argument("--ab-rounds", type=int, default=3)
    ap.add_argument("--ab-only", action="store_true")
    ap.add_argument("--databases", default="sqlite,postgresql",
                    help="comma-separated: sqlite, postgresql (each benched in this run)")
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--pg-admin-url", default=_PG_ADMIN_URL[0],
                    help="a PostgreSQL database to create the bench's own database from")
    args = ap.parse_args()
    _PG_ADMIN_URL[0] = args.pg_admin_url
    if args.ab_only:
        print(f"  {speed_line()}")
        metrics_ab(2, args.tasks, args.procs, args.threads, args.ab_rounds)
        return
    empty_rps, empty_cpu = floor(args.tasks * 4, args.procs, args.threads)
    print("baseline")
    print(f"  {speed_line()}")
    print(f"  empty RPC {empty_rps:.0f} RPC/s (confide's gRPC server stack, same clients)")
    print(f"  empty RPC server CPU {empty_cpu:.2f} ms/RPC")
    print(f"  ceiling at 4 RPCs per task {empty_rps / 4:.0f} tasks/s")
    databases = [d for d in args.databases.split(",") if d]
    rates: dict[tuple[str, int], float] = {}
    for workers in (int(w) for w in args.workers.split(",")):
        for database in databases:
            rates[database, workers] = bench(workers, args.tasks, args.procs, args.threads,
                                             args.latency, empty_rps, database)
    if "sqlite" in databases and "postgresql" in databases:
        print("postgresql / sqlite")
        for (database, workers), rate in rates.items():
            if database == "postgresql" and ("sqlite", workers) in rates:
                print(f"  workers {workers}: {rate / rates['sqlite', workers]:.2f} x "
                      "the tasks/s of SQLite")
    if args.ab_rounds > 0:
        metrics_ab(2, args.tasks, args.procs, args.threads, args.ab_rounds)


if __name__ == "__main__":
    main()
