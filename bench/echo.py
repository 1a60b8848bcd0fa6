"""Create→result latency and throughput of builtin-echo tasks (issue: platform core).

Starts ``confide serve`` (as the README does) with 1 and then 2 workers, and
measures from the client side over the network:

* latency: one client, sequential CreateTask → InvokeTask → WaitTask; p50/p95;
* throughput: several client processes with several threads each, running
  tasks end to end for a fixed number of tasks; tasks/s.

A plain baseline in the same run: the round trip of the cheapest
authenticated RPC (GetTask), so the task figure can be read against the
gRPC floor (a task needs three client RPCs plus two worker RPCs).

Run: ``python bench/echo.py [--tasks 2000] [--procs 4] [--threads 8]``.
Prints one figure per line with its unit.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from confide.client import Client, FunctionArgument
from tests.platform._server import Server


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def _client(ports: dict[str, int], cert: Path) -> Client:
    c = Client.connect("127.0.0.1", server_cert=cert, authentication_port=ports["authentication"],
                       frontend_port=ports["frontend"])
    c.login("admin", "teaclave")
    return c


def _load(ports: dict[str, int], cert: str, fid: str, n: int, threads: int,
          out: mp.Queue) -> None:  # type: ignore[type-arg]
    client = _client(ports, Path(cert))
    per = [n // threads + (1 if i < n % threads else 0) for i in range(threads)]
    ok = [0]
    lock = threading.Lock()

    def run(count: int) -> None:
        for _ in range(count):
            tid = client.create_task(fid, {"message": "x"}, executor="builtin")
            client.invoke_task(tid)
            if client.wait(tid, 60).ok:
                with lock:
                    ok[0] += 1

    ts = [threading.Thread(target=run, args=(c,)) for c in per]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.put(ok[0])


def bench(workers: int, tasks: int, procs: int, threads: int, latency_n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "data", workers=workers).start()
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
            q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
            per = [tasks // procs + (1 if i < tasks % procs else 0) for i in range(procs)]
            ps = [mp.Process(target=_load, args=(server.ports, str(cert), fid, n, threads, q))
                  for n in per]
            t0 = time.perf_counter()
            for p in ps:
                p.start()
            done = sum(q.get() for _ in ps)
            for p in ps:
                p.join()
            elapsed = time.perf_counter() - t0
        finally:
            server.stop()
    print(f"workers {workers}")
    print(f"  GetTask round trip p50 {statistics.median(rpc):.2f} ms")
    print(f"  create→result p50 {_pct(lat, 0.5):.1f} ms")
    print(f"  create→result p95 {_pct(lat, 0.95):.1f} ms")
    print(f"  create→result p50 / GetTask p50 {_pct(lat, 0.5) / statistics.median(rpc):.1f} x")
    print(f"  throughput {done / elapsed:.0f} tasks/s ({done} tasks, {procs}x{threads} clients)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--latency", type=int, default=200)
    args = ap.parse_args()
    for workers in (1, 2):
        bench(workers, args.tasks, args.procs, args.threads, args.latency)


if __name__ == "__main__":
    main()
