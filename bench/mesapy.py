"""MesaPy mode benchmark: what translating and running Python 2.7 costs.

Run: ``PYTHONPATH=src python bench/mesapy.py [--runs N]`` (as root: the sandbox).

Prints a table:
* translation at registration (fissix): a Teaclave-sized payload (the logistic
  regression of ``tests/mesapy_payloads``) and a 100 KB one, in ms and KB/s;
* a task in the ``mesapy`` executor's sandbox (cold, as a worker without
  pre-started sandboxes runs it), the same function as a MesaPy-mode function
  and, the baseline measured in the same run, as a Python 3 function: an echo,
  and one that imports numpy (``_numpypy`` vs ``numpy``); p50 and the difference.
"""

from __future__ import annotations

import argparse
import io
import statistics
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import BinaryIO

# bench/ is not a package: this file's directory is on sys.path when run as a script.
from _speed import speed_line

from confide.executors.python import PythonExecutor
from confide.invocation import FunctionSpec, Invocation
from confide.mesapy import pack, translate

PAYLOAD = Path(__file__).resolve().parents[1] / "tests" / "mesapy_payloads" / "logreg.py2"

CASES = {
    "echo": ("def entrypoint(argv):\n    return argv[1]\n",
             "def entrypoint(argv):\n    return argv[1]\n"),
    "numpy import": ("import _numpypy\ndef entrypoint(argv):\n    return argv[1]\n",
                     "import numpy\ndef entrypoint(argv):\n    return argv[1]\n"),
}


class _NoFiles:
    def input_names(self) -> Collection[str]:
        return ()

    def output_names(self) -> Collection[str]:
        return ()

    def open_input(self, name: str) -> BinaryIO:
        raise KeyError(name)

    def create_output(self, name: str) -> BinaryIO:
        return io.BytesIO()


def _run(executor: PythonExecutor, payload: bytes) -> float:
    invocation = Invocation(task_id="bench", function=FunctionSpec("f", "f", "python", payload),
                            arguments={"m": "x"}, io=_NoFiles(), cancel=threading.Event())
    t0 = time.perf_counter()
    result = executor.run(invocation)
    elapsed = time.perf_counter() - t0
    if result != "x":
        raise SystemExit(f"unexpected result {result!r}")
    return elapsed


def _p50(fn: Callable[[], float], runs: int) -> float:
    return statistics.median(fn() for _ in range(runs))


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    print(speed_line())
    teaclave_sized = PAYLOAD.read_bytes()
    large = teaclave_sized * (100_000 // len(teaclave_sized))
    translate(b"x = 1\n")  # the translator is built once per process
    print(f"{'translation':<34}{'bytes':>10}{'p50 ms':>10}{'KB/s':>10}")
    for name, payload in (("logreg.py2", teaclave_sized), ("100 KB payload", large)):
        t = _p50(lambda p=payload: _timed(lambda: translate(p)), max(3, runs // 2))  # type: ignore[misc]
        print(f"{name:<34}{len(payload):>10}{t * 1000:>10.1f}{len(payload) / t / 1000:>10.0f}")
    executor = PythonExecutor()
    executor.sandbox_config()
    print()
    print(f"{'task (cold sandbox, p50 ms)':<34}{'python3':>10}{'mesapy':>10}{'diff':>10}")
    for name, (py2, py3) in CASES.items():
        staged, plain = pack(translate(py2.encode())), py3.encode()
        _run(executor, plain)
        base = _p50(lambda s=plain: _run(executor, s), runs)  # type: ignore[misc]
        mode = _p50(lambda s=staged: _run(executor, s), runs)  # type: ignore[misc]
        print(f"{name:<34}{base * 1000:>10.1f}{mode * 1000:>10.1f}{(mode - base) * 1000:>+10.1f}")


if __name__ == "__main__":
    main()
