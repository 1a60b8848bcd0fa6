"""The client host's side of ``bench/multihost.py``: run in the client namespace.

``python _multihost_load.py setup AUTH FRONTEND`` logs in as admin, registers
``builtin-echo`` and prints its function id.

``python _multihost_load.py load AUTH FRONTEND[,FRONTEND...] --function FID
--tasks N --clients C --procs P --ready FILE --go FILE --result FILE`` starts
``P`` client processes with ``C`` threads in all (each thread is one sequential
client: CreateTask → InvokeTask → WaitTask; thread ``i`` uses frontend
``i mod len(FRONTEND)``). When every process is connected and logged in it
writes ``--ready`` and waits for ``--go`` to exist (the bench reads every
role's CPU time in between), then runs ``N`` tasks and writes a JSON summary
to ``--result``: elapsed seconds from the go, tasks ok/failed, and each task's
create→result latency.

An endpoint is ``HOST:PORT:CERT`` (the API certificate that node wrote to its
data directory, pinned): authentication and each frontend are separate
processes with certificates of their own.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import threading
import time
from pathlib import Path
from typing import Any

from confide.client import Client, FunctionArgument
from confide.client._sdk import _channel  # one channel per endpoint: auth and frontend differ


def _split(n: int, parts: int) -> list[int]:
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


def _connect(auth: str, frontend: str) -> Client:
    (ahost, aport, acert), (fhost, fport, fcert) = auth.split(":", 2), frontend.split(":", 2)
    client = Client(_channel(ahost, int(aport), Path(acert).read_bytes()),
                    _channel(fhost, int(fport), Path(fcert).read_bytes()))
    client.login("admin", "teaclave")
    return client


def setup(auth: str, frontend: str) -> str:
    client = _connect(auth, frontend)
    fid = client.register_function("builtin-echo", executor_type="builtin",
                                   arguments=[FunctionArgument("message")])
    tid = client.create_task(fid, {"message": "warm"}, executor="builtin")
    client.invoke_task(tid)
    task = client.wait(tid, 120)
    if not task.ok:
        raise SystemExit(f"the first echo task failed: {task.reason}")
    return fid


def _process(auth: str, frontends: list[str], fid: str, first_thread: int,
             counts: list[int], ready: Any, go: Any, out: Any) -> None:
    # One client per frontend this process's threads use (gRPC channels are thread-safe).
    used = {(first_thread + i) % len(frontends) for i in range(len(counts))}
    clients = {k: _connect(auth, frontends[k]) for k in used}
    latencies: list[float] = []
    failed = [0]
    lock = threading.Lock()

    def run(thread: int, n: int) -> None:
        client = clients[thread % len(frontends)]
        for _ in range(n):
            t0 = time.perf_counter()
            try:
                tid = client.create_task(fid, {"message": "x"}, executor="builtin")
                client.invoke_task(tid)
                ok = client.wait(tid, 120).ok
            except Exception:  # counted, not fatal: the summary says how many failed
                ok = False
            dt = time.perf_counter() - t0
            with lock:
                if ok:
                    latencies.append(dt)
                else:
                    failed[0] += 1

    threads = [threading.Thread(target=run, args=(first_thread + i, n))
               for i, n in enumerate(counts)]
    ready.wait()
    go.wait()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((latencies, failed[0]))


def load(args: argparse.Namespace) -> dict[str, object]:
    frontends = args.frontends.split(",")
    procs = max(1, min(args.procs, args.clients))
    per_proc = _split(args.clients, procs)  # threads of each process
    per_thread = _split(args.tasks, args.clients)
    ready, go = mp.Barrier(procs + 1), mp.Barrier(procs + 1)
    out: Any = mp.Queue()
    ps, first = [], 0
    for k in per_proc:
        ps.append(mp.Process(target=_process, args=(
            args.auth, frontends, args.function, first, per_thread[first:first + k],
            ready, go, out)))
        first += k
    for p in ps:
        p.start()
    ready.wait(timeout=300)
    Path(args.ready).write_text("ready\n")
    while not Path(args.go).exists():
        time.sleep(0.01)
    go.wait(timeout=60)
    t0 = time.perf_counter()
    latencies: list[float] = []
    failed = 0
    for _ in ps:
        lat, bad = out.get()
        latencies += lat
        failed += bad
    elapsed = time.perf_counter() - t0
    for p in ps:
        p.join()
    return {"elapsed_s": elapsed, "ok": len(latencies), "failed": failed,
            "latencies_s": latencies}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("setup", "load"))
    parser.add_argument("auth")
    parser.add_argument("frontends")
    parser.add_argument("--function")
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--ready")
    parser.add_argument("--go")
    parser.add_argument("--result")
    args = parser.parse_args()
    if args.mode == "setup":
        print(setup(args.auth, args.frontends.split(",")[0]))
        return
    summary = load(args)
    tmp = Path(args.result + ".tmp")
    tmp.write_text(json.dumps(summary))
    tmp.rename(args.result)  # whole or absent: the bench polls for it


if __name__ == "__main__":
    main()
