"""Cost of the task caps on the output write path, with its baseline in the same run.

Run: ``PYTHONPATH=src python bench/caps.py [--mib N] [--runs R]``.

Writes N MiB to one output in the worker's private area (``/dev/shm`` where
present), in 4 KiB and in 1 MiB writes (a wasm module's small writes, and the
Python sandbox's frames / the wasm I/O chunk):
* baseline: a plain file opened as ``StagedIO.create_output`` did before;
* capped: the same file behind ``MeteredFile`` (private area cap) and
  ``CappedOutput`` (per-file and per-task output caps), as every executor
  now writes.
Then the same N MiB written by a wasm module in 4 KiB ``teaclave_write_file``
calls, run by ``WasmExecutor`` over a plain-file TaskIO (baseline) and over
the same TaskIO under ``apply_caps`` plus the metered file (capped).
Baseline and capped runs alternate; figures are medians of R runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

# bench/ is not a package: this file's directory is on sys.path when run as a script.
from _speed import speed_line

from confide.config import Limits
from confide.execution._area import AreaBudget, MeteredFile
from confide.executors._caps import CappedOutput, OutputBudget


def _root() -> Path:
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


def _plain(path: Path) -> BinaryIO:
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")


def _capped(path: Path) -> BinaryIO:
    limits = Limits(max_output_file_bytes=1 << 40, max_output_bytes=1 << 40)
    metered = MeteredFile(_plain(path), AreaBudget(1 << 40))
    return CappedOutput(metered, "out", OutputBudget(limits))  # type: ignore[arg-type, return-value]


def _throughput(open_output: Callable[[Path], BinaryIO], work: Path, total: int,
                chunk: int) -> float:
    block = os.urandom(chunk)
    path = work / "out"
    start = time.perf_counter()
    with open_output(path) as out:
        for _ in range(total // chunk):
            out.write(block)
    elapsed = time.perf_counter() - start
    path.unlink()
    return total / elapsed / 1e6


WASM_WRITER = """(module
  (import "env" "teaclave_create_output" (func $create (param i32) (result i32)))
  (import "env" "teaclave_write_file" (func $write (param i32 i32 i32) (result i32)))
  (import "env" "teaclave_close_file" (func $close (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "out\\00")
  (func (export "entrypoint") (param $argc i32) (param $argv i32) (result i32)
    (local $out i32) (local $left i32)
    (local.set $left (i32.const CALLS))
    (local.set $out (call $create (i32.const 0)))
    (block $done (loop $more
      (br_if $done (i32.eqz (local.get $left)))
      (drop (call $write (local.get $out) (i32.const 1024) (i32.const 4096)))
      (local.set $left (i32.sub (local.get $left) (i32.const 1)))
      (br $more)))
    (drop (call $close (local.get $out)))
    (i32.const 0)))"""


class _FileTaskIO:
    """One output, a file in ``work``, opened as ``open_output`` opens it."""

    def __init__(self, work: Path, open_output: Callable[[Path], BinaryIO]) -> None:
        self._work = work
        self._open = open_output

    def input_names(self) -> list[str]:
        return []

    def output_names(self) -> list[str]:
        return ["out"]

    def open_input(self, name: str) -> BinaryIO:
        raise KeyError(name)

    def create_output(self, name: str) -> BinaryIO:
        return self._open(self._work / name)


def _wasm_seconds(work: Path, total: int, capped: bool) -> float:
    import threading

    import wasmtime

    from confide.executors import apply_caps
    from confide.executors.wasm import WasmExecutor
    from confide.invocation import FunctionSpec, Invocation

    limits = Limits(max_output_file_bytes=1 << 40, max_output_bytes=1 << 40)
    payload = bytes(wasmtime.wat2wasm(WASM_WRITER.replace("CALLS", str(total // 4096))))
    invocation = Invocation("t", FunctionSpec("f", "w", "wamr", payload), {},
                            _FileTaskIO(work, _plain_metered if capped else _plain),
                            cancel=threading.Event())
    if capped:
        invocation = apply_caps(invocation, limits)
    executor = WasmExecutor(limits)
    start = time.perf_counter()
    executor.run(invocation)
    elapsed = time.perf_counter() - start
    (work / "out").unlink()
    return elapsed


def _plain_metered(path: Path) -> BinaryIO:
    return MeteredFile(_plain(path), AreaBudget(1 << 40))  # type: ignore[return-value]


def _alternating(runs: int, baseline: Callable[[], float], capped: Callable[[], float],
                 best: Callable[[list[float]], float]) -> tuple[float, float, float, float]:
    """Medians and bests (``best``: max for rates, min for times) of alternating runs."""
    pairs = [(baseline(), capped()) for _ in range(runs)]
    bases, caps = [b for b, _ in pairs], [c for _, c in pairs]
    return statistics.median(bases), statistics.median(caps), best(bases), best(caps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    total = args.mib << 20
    work = Path(tempfile.mkdtemp(prefix="confide-bench-caps-", dir=_root()))
    try:
        print(speed_line())
        print(f"{args.mib} MiB per run, median of {args.runs} runs, in {work.parent}")
        print("MB/s, median (best) of the runs; overhead: extra time per byte, median (best)")
        for chunk in (4 << 10, 1 << 20):
            base, capped, base_best, capped_best = _alternating(
                args.runs, lambda c=chunk: _throughput(_plain, work, total, c),
                lambda c=chunk: _throughput(_capped, work, total, c), max)
            overhead, best_overhead = base / capped - 1, base_best / capped_best - 1
            per_write = chunk / 1e6 * (1 / capped_best - 1 / base_best) * 1e6  # µs, bests
            print(f"file, {chunk >> 10:>4} KiB writes: baseline {base:5.0f} ({base_best:5.0f}), "
                  f"capped {capped:5.0f} ({capped_best:5.0f}), overhead "
                  f"{100 * overhead:+.1f}% ({100 * best_overhead:+.1f}%, "
                  f"{per_write:+.1f} µs per write)")
        base_s, capped_s, base_min, capped_min = _alternating(
            args.runs, lambda: _wasm_seconds(work, total, False),
            lambda: _wasm_seconds(work, total, True), min)
        print(f"wasm task, 4 KiB writes: baseline {total / base_s / 1e6:5.0f} "
              f"({total / base_min / 1e6:5.0f}), capped {total / capped_s / 1e6:5.0f} "
              f"({total / capped_min / 1e6:5.0f}), overhead {100 * (capped_s / base_s - 1):+.1f}% "
              f"({100 * (capped_min / base_min - 1):+.1f}%)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
