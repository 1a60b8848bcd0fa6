"""Executor benchmarks: prints one figure per line, with its unit.

Run: ``PYTHONPATH=src python bench/executors.py [--runs N]``.

Python sandbox (``mesapy``), each figure twice: *cold* (``prestart=0``: bwrap,
CPython and the limits are started for the task) and *pre-started*
(``prestart=1``: the task is handed to a sandbox that is already hardened with
numpy imported; the pool is given time to refill between timed runs, as it has
between tasks on a worker that is not saturated):
* start: an echo function, and one that imports numpy (p50/p95);
* a numpy workload as a confide task vs the same source run plainly in this
  process (numpy already imported here), as a ratio and as fixed cost.
Target: sandboxed <= 1.2 x plain + 50 ms.
Also: pre-started echo back to back (no idle time: the pool cannot keep up and
runs fall back to cold sandboxes).

WebAssembly (``wamr``), from ``bench/wasm_bench.py``: cold compile and
instantiate + call of the add module with the compiled module cached.
Target: instantiate + call <= 5 ms.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import threading
import time
from collections.abc import Callable, Collection
from typing import Any, BinaryIO

# bench/ is not a package: this file's directory is on sys.path when run as a script.
from _speed import speed_line
from wasm_bench import bench_wasm

from confide.executors._sandbox import discover
from confide.executors.python import PythonExecutor
from confide.invocation import FunctionSpec, Invocation

ECHO = "def entrypoint(argv):\n    return argv[1]\n"
NUMPY_IMPORT = "import numpy\ndef entrypoint(argv):\n    return argv[1]\n"
NUMPY_WORK = """
import numpy as np

def entrypoint(argv):
    rng = np.random.default_rng(7)
    a = rng.standard_normal((400, 400))
    acc = 0.0
    for _ in range(int(argv[1])):
        b = a @ a.T
        acc += float(np.linalg.eigvalsh(b)[-1])
        acc += float(np.abs(np.fft.rfft2(a)).sum())
        acc += float(np.sort(a, axis=None)[1000])
    return f"{acc:.3f}"
"""


class _NoFiles:
    def input_names(self) -> Collection[str]:
        return ()

    def output_names(self) -> Collection[str]:
        return ()

    def open_input(self, name: str) -> BinaryIO:
        raise KeyError(name)

    def create_output(self, name: str) -> BinaryIO:
        return io.BytesIO()


def _invocation(source: str, arguments: dict[str, Any]) -> Invocation:
    return Invocation(
        task_id="bench",
        function=FunctionSpec("f", "f", "python", source.encode()),
        arguments=arguments,
        io=_NoFiles(),
        cancel=threading.Event(),
    )


def _times(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return sorted(out)


def _pct(xs: list[float], p: float) -> float:
    return xs[min(len(xs) - 1, round(p * (len(xs) - 1)))] * 1000


def _plain(source: str, argv: list[str]) -> Callable[[], object]:
    namespace: dict[str, Any] = {"__name__": "function"}
    exec(compile(source, "<function>", "exec"), namespace)
    return lambda: namespace["entrypoint"](argv)


def _print(name: str, value: float, unit: str, digits: int = 1) -> None:
    print(f"{name}: {value:.{digits}f} {unit}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--iterations", type=int, default=20, help="numpy workload size")
    parser.add_argument("--blas-threads", type=int, default=1)
    args = parser.parse_args()
    # Same BLAS thread count on both sides (set before numpy is first imported here).
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.blas_threads)
    config = discover(blas_threads=args.blas_threads)
    cold = PythonExecutor(config=config)
    warm = PythonExecutor(config=config, prestart=1)
    cold.run(_invocation(ECHO, {"m": "warm"}))  # discover paths, page cache
    print(speed_line())

    def pre_started(source: str, arguments: dict[str, Any]) -> Callable[[], object]:
        def run() -> object:
            return warm.run(_invocation(source, arguments))

        return run

    def timed(ex: str, source: str, arguments: dict[str, Any]) -> float:
        if ex == "pre-started":
            if not warm.wait_prestarted(30.0):  # untimed: the pool refills between tasks
                raise RuntimeError("the pre-started sandbox did not become ready")
            return _times(pre_started(source, arguments), 1)[0]
        return _times(lambda: cold.run(_invocation(source, arguments)), 1)[0]

    for label, source in (("echo", ECHO), ("import numpy", NUMPY_IMPORT)):
        for ex in ("cold", "pre-started"):
            xs = sorted(timed(ex, source, {"m": "hi"}) for _ in range(args.runs))
            _print(f"mesapy start, {label}, {ex}, p50", _pct(xs, 0.5), "ms")
            _print(f"mesapy start, {label}, {ex}, p95", _pct(xs, 0.95), "ms")
    warm.wait_prestarted(30.0)
    xs = _times(pre_started(ECHO, {"m": "hi"}), args.runs)
    _print("mesapy start, echo, pre-started back to back, p50", _pct(xs, 0.5), "ms")
    _print("mesapy start, echo, pre-started back to back, p95", _pct(xs, 0.95), "ms")

    n = str(args.iterations)
    work_runs = max(3, args.runs // 6)
    run_plain = _plain(NUMPY_WORK, ["n", n])
    boxed: dict[str, list[float]] = {"cold": [], "pre-started": []}
    plain: list[float] = []
    for _ in range(work_runs):  # interleaved, so all see the same machine load
        for ex in boxed:
            boxed[ex].append(timed(ex, NUMPY_WORK, {"n": n}))
        plain += _times(run_plain, 1)
    p50 = statistics.median(plain)
    _print("numpy workload, plain in-process, median", p50 * 1000, "ms")
    for ex, times in boxed.items():
        b50 = statistics.median(times)
        _print(f"numpy workload, {ex} task, median", b50 * 1000, "ms")
        _print(f"numpy workload, {ex} task, fixed cost (task - plain)", (b50 - p50) * 1000, "ms")
        _print(f"numpy workload, {ex} task, ratio task / plain", b50 / p50, "x", 2)
        verdict = "met" if b50 <= 1.2 * p50 + 0.050 else "NOT met"
        print(f"numpy workload, {ex} task, target <= 1.2 x plain + 50 ms: {verdict}")
    warm.close()

    # ---- wasm executor (wamr): bench/wasm_bench.py ------------------------------
    wasm = bench_wasm(max(args.runs, 200), out=io.StringIO())
    _print("wamr cold compile (add module), p50", wasm["cold_compile_p50_ms"], "ms", 2)
    _print("wamr instantiate + call (add, cached), p50", wasm["call_p50_ms"], "ms", 3)
    _print("wamr instantiate + call (add, cached), p95", wasm["call_p95_ms"], "ms", 3)
    verdict = "met" if wasm["call_p50_ms"] <= 5.0 else "NOT met"
    print(f"wamr target instantiate + call <= 5 ms: {verdict}")


if __name__ == "__main__":
    main()
