"""Benchmark of the wasm executor: cold compile and per-task instantiate + call.

Run: ``PYTHONPATH=src python bench/wasm_bench.py [runs]``. Prints a table.
Target (docs/wasm.md): p50 of instantiate + call for the add module <= 5 ms.
"""

from __future__ import annotations

import io
import statistics
import sys
import time
from collections.abc import Callable
from typing import BinaryIO

import wasmtime

from confide.config import Limits
from confide.executors.wasm import WasmExecutor
from confide.invocation import FunctionSpec, InvalidInputName, InvalidOutputName, Invocation

_ADD_WAT = r"""(module
  (memory (export "memory") 1)
  (func $atoi (param $p i32) (result i32) (local $n i32) (local $d i32)
    (block $done (loop $next
      (local.set $d (i32.sub (i32.load8_u (local.get $p)) (i32.const 48)))
      (br_if $done (i32.gt_u (local.get $d) (i32.const 9)))
      (local.set $n (i32.add (i32.mul (local.get $n) (i32.const 10)) (local.get $d)))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $next)))
    (local.get $n))
  (func (export "entrypoint") (param $argc i32) (param $argv i32) (result i32)
    (i32.add (call $atoi (i32.load offset=4 (local.get $argv)))
             (call $atoi (i32.load offset=12 (local.get $argv))))))"""


class _NoFiles:
    def input_names(self) -> list[str]:
        return []

    def output_names(self) -> list[str]:
        return []

    def open_input(self, name: str) -> BinaryIO:
        raise InvalidInputName(name)

    def create_output(self, name: str) -> BinaryIO:
        raise InvalidOutputName(name)


def _invocation(payload: bytes) -> Invocation:
    return Invocation(
        task_id="bench",
        function=FunctionSpec("f", "add", "wamr", payload),
        arguments={"adder1": "3", "adder2": "4"},
        io=_NoFiles(),
    )


def _percentiles_ms(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1e3, p95 * 1e3, ordered[-1] * 1e3


def _time(action: Callable[[], object], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return samples


def bench_wasm(runs: int = 200, out: io.TextIOBase | None = None) -> dict[str, float]:
    """Measure and print the table; returns the numbers (milliseconds)."""
    stream = out if out is not None else sys.stdout
    payload = bytes(wasmtime.wat2wasm(_ADD_WAT))

    # Cold compile: a fresh executor (fresh engine, empty cache) per sample.
    cold = _time(lambda: WasmExecutor().engine.compile(payload), max(5, runs // 20))

    executor = WasmExecutor(Limits())
    inv = _invocation(payload)
    if executor.run(inv) != "7":
        raise RuntimeError("add module gave a wrong result")
    warm = _time(lambda: executor.run(_invocation(payload)), runs)

    rows = {
        "cold compile (add module)": _percentiles_ms(cold),
        "instantiate + call (add, cached)": _percentiles_ms(warm),
    }
    print(f"{'wasm executor':<36}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}", file=stream)
    for label, (p50, p95, worst) in rows.items():
        print(f"{label:<36}{p50:>10.3f}{p95:>10.3f}{worst:>10.3f}", file=stream)
    p50_warm = rows["instantiate + call (add, cached)"][0]
    verdict = "OK" if p50_warm <= 5.0 else "ABOVE TARGET"
    print(f"target: instantiate + call p50 <= 5 ms -> {verdict}", file=stream)
    return {
        "cold_compile_p50_ms": rows["cold compile (add module)"][0],
        "call_p50_ms": p50_warm,
        "call_p95_ms": rows["instantiate + call (add, cached)"][1],
    }


if __name__ == "__main__":
    bench_wasm(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
