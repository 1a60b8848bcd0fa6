"""Executor benchmarks: prints a table.

Run: ``PYTHONPATH=src python bench/executors.py [--runs N]``.

Python sandbox (``mesapy``):
* cold start: a fresh sandbox per run for an echo function (p50/p95);
* a numpy workload as a confide task vs the same source run plainly in this
  process (numpy already imported here), as a ratio and as fixed cost.
Target: sandboxed <= 1.2 x plain + 50 ms.

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
from wasm_bench import bench_wasm

from confide.executors._base import FunctionSpec, Invocation
from confide.executors._sandbox import discover
from confide.executors.python import PythonExecutor

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--iterations", type=int, default=20, help="numpy workload size")
    parser.add_argument("--blas-threads", type=int, default=1)
    args = parser.parse_args()
    # Same BLAS thread count on both sides (set before numpy is first imported here).
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.blas_threads)
    ex = PythonExecutor(config=discover(blas_threads=args.blas_threads))
    ex.run(_invocation(ECHO, {"m": "warm"}))  # discover paths, page cache

    rows: list[tuple[str, str, str]] = []
    echo = _times(lambda: ex.run(_invocation(ECHO, {"m": "hi"})), args.runs)
    rows.append(
        ("mesapy cold start, echo", f"{_pct(echo, 0.5):.1f} ms", f"{_pct(echo, 0.95):.1f} ms")
    )
    imp = _times(lambda: ex.run(_invocation(NUMPY_IMPORT, {"m": "hi"})), args.runs)
    rows.append(("mesapy cold start, import numpy", f"{_pct(imp, .5):.1f} ms",
                 f"{_pct(imp, .95):.1f} ms"))  # fmt: skip

    n = str(args.iterations)
    work_runs = max(3, args.runs // 6)
    run_plain = _plain(NUMPY_WORK, ["n", n])
    boxed: list[float] = []
    plain: list[float] = []
    for _ in range(work_runs):  # interleaved, so both see the same machine load
        boxed += _times(lambda: ex.run(_invocation(NUMPY_WORK, {"n": n})), 1)
        plain += _times(run_plain, 1)
    b50, p50 = statistics.median(boxed), statistics.median(plain)
    rows.append(("numpy workload, sandboxed task", f"{b50 * 1000:.1f} ms", ""))
    rows.append(("numpy workload, plain in-process", f"{p50 * 1000:.1f} ms", ""))
    rows.append(("ratio sandboxed / plain", f"{b50 / p50:.2f}x", ""))
    rows.append(("fixed cost (sandboxed - plain)", f"{(b50 - p50) * 1000:.1f} ms", ""))
    verdict = "met" if b50 <= 1.2 * p50 + 0.050 else "NOT met"
    rows.append(("target <= 1.2 x plain + 50 ms", verdict, ""))

    # ---- wasm executor (wamr): bench/wasm_bench.py ------------------------------
    wasm = bench_wasm(max(args.runs, 200), out=io.StringIO())
    rows.append(("wamr cold compile (add module)", f"{wasm['cold_compile_p50_ms']:.2f} ms", ""))
    rows.append(("wamr instantiate + call (add, cached)", f"{wasm['call_p50_ms']:.3f} ms",
                 f"{wasm['call_p95_ms']:.3f} ms"))  # fmt: skip
    rows.append(("target instantiate + call <= 5 ms",
                 "met" if wasm["call_p50_ms"] <= 5.0 else "NOT met", ""))  # fmt: skip

    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark':<{width}}  {'p50 / value':>14}  {'p95':>10}")
    print("-" * (width + 28))
    for name, a, b in rows:
        print(f"{name:<{width}}  {a:>14}  {b:>10}")


if __name__ == "__main__":
    main()
