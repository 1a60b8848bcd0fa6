"""What idempotency keys cost: echo create→result with the SDK's keys on and off, one run.

Starts ``confide serve`` (SQLite, 2 workers) as the README does and runs, from
one client, sequential CreateTask → InvokeTask → WaitTask, alternating rounds
with the SDK sending an ``idempotency-key`` on each create (its default: the
server stores the key in the create's transaction) and without (as a Teaclave
client does), ABBA for ``--rounds`` rounds so both arms see the same machine.
Prints p50/p95 per arm and the difference of the medians.

Run: ``python bench/retries.py [--tasks 200] [--rounds 2]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from confide.client import Client, FunctionArgument, _sdk
from tests.platform._server import Server

_KEYED = _sdk._CREATES


def _arm(client: Client, fid: str, n: int, keyed: bool) -> list[float]:
    _sdk._CREATES = _KEYED if keyed else ("CreateBlobUrls",)  # no key on CreateTask
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        tid = client.create_task(fid, {"message": "x"}, executor="builtin")
        client.invoke_task(tid)
        assert client.wait(tid, 60).ok
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=200, help="tasks per arm per round")
    ap.add_argument("--rounds", type=int, default=2, help="ABBA rounds")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "data", workers=2).start()
        try:
            client = server.admin()
            fid = client.register_function("builtin-echo", executor_type="builtin",
                                           arguments=[FunctionArgument("message")], public=True)
            _arm(client, fid, 50, True)  # warm up both paths
            _arm(client, fid, 50, False)
            arms: dict[bool, list[float]] = {True: [], False: []}
            for _ in range(args.rounds):
                for keyed in (False, True, True, False):
                    arms[keyed] += _arm(client, fid, args.tasks // 2, keyed)
        finally:
            server.stop()
    print(f"{'arm':<28}{'tasks':>7}{'p50 ms':>9}{'p95 ms':>9}")
    for keyed, name in ((False, "no key (Teaclave client)"), (True, "idempotency key (SDK)")):
        xs = sorted(arms[keyed])
        print(f"{name:<28}{len(xs):>7}{statistics.median(xs):>9.2f}"
              f"{xs[int(0.95 * (len(xs) - 1))]:>9.2f}")
    diff = statistics.median(arms[True]) - statistics.median(arms[False])
    print(f"difference of the p50s: {diff:+.2f} ms "
          f"({statistics.median(arms[True]) / statistics.median(arms[False]):.2f}x)")


if __name__ == "__main__":
    main()
