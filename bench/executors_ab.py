"""The Python sandbox's figures for two checkouts of confide, measured in one run.

Run: ``python bench/executors_ab.py --baseline DIR [--runs N]`` where DIR is
another checkout (``git archive <rev> | tar -x -C DIR``). Each checkout gets a
process of its own that keeps a cold and a pre-started executor; the driver
asks them in turn (A B B A ...), so both see the same machine load, which on a
shared machine varies more between runs than any change measured here.
Prints, for each figure, the median of both and their ratio (this / baseline):
pre-started echo, pre-started numpy workload, cold echo, cold numpy import, and
the numpy workload run plainly in the measuring process (the plain baseline).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import IO

from _speed import speed_line

# Runs inside each checkout's process: only API both sides have.
SERVER = r'''
import io, json, os, sys, threading, time
try:  # the contract's home since issue 11; older checkouts kept it in executors/_base.py
    from confide.invocation import FunctionSpec, Invocation
except ImportError:
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


class NoFiles:
    def input_names(self): return ()
    def output_names(self): return ()
    def open_input(self, name): raise KeyError(name)
    def create_output(self, name): raise KeyError(name)


def invocation(source, value):
    return Invocation(task_id="t", function=FunctionSpec("f", "f", "python", source.encode()),
                      arguments={"m": value}, io=NoFiles(), log=None, cancel=threading.Event())


config = discover(blas_threads=1)
cold = PythonExecutor(config=config)
warm = PythonExecutor(config=config, prestart=1)
cold.run(invocation(ECHO, "warm"))
iterations = sys.argv[1]
plain_ns = {}
exec(compile(NUMPY_WORK, "<plain>", "exec"), plain_ns)
print(json.dumps("ready"), flush=True)
for line in sys.stdin:
    figure = line.strip()
    if figure.endswith("pre-started") and not warm.wait_prestarted(60.0):
        raise SystemExit("the pre-started sandbox did not become ready")
    source, value = {"echo": (ECHO, "hi"), "numpy import": (NUMPY_IMPORT, "hi"),
                     "numpy workload": (NUMPY_WORK, iterations)}[figure.rsplit(",", 1)[0]]
    start = time.perf_counter()
    if figure.endswith("plain"):
        plain_ns["entrypoint"](["m", value])
    else:
        (warm if figure.endswith("pre-started") else cold).run(invocation(source, value))
    print(json.dumps((time.perf_counter() - start) * 1000), flush=True)
warm.close()
'''

FIGURES = ("echo,pre-started", "numpy workload,pre-started", "echo,cold", "numpy import,cold",
           "numpy workload,plain")  # fmt: skip


class Side:
    def __init__(self, name: str, root: Path, iterations: int) -> None:
        self.name = name
        env = {**os.environ, "PYTHONPATH": str(root / "src"),
               "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}  # fmt: skip
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(iterations)], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self._read() != "ready":
            raise RuntimeError(f"{name}: the measuring process did not start")

    def _read(self) -> object:
        out: IO[str] | None = self.proc.stdout
        if out is None:
            raise RuntimeError("no pipe")
        return json.loads(out.readline())

    def measure(self, figure: str) -> float:
        if self.proc.stdin is None:
            raise RuntimeError("no pipe")
        self.proc.stdin.write(figure + "\n")
        self.proc.stdin.flush()
        value = self._read()
        if not isinstance(value, float):
            raise RuntimeError(f"{self.name}: {value!r}")
        return value

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", type=Path, required=True, help="the other checkout's root")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--iterations", type=int, default=20, help="numpy workload size")
    args = parser.parse_args()
    sides = [Side("baseline", args.baseline, args.iterations),
             Side("this", Path(__file__).resolve().parents[1], args.iterations)]  # fmt: skip
    print(speed_line())
    times: dict[tuple[str, str], list[float]] = {}
    for i in range(args.runs):
        for figure in FIGURES:
            if figure.startswith("numpy workload") and i % 3:
                continue  # the long one: every third round
            order = sides if i % 2 == 0 else sides[::-1]
            for side in order:
                times.setdefault((side.name, figure), []).append(side.measure(figure))
    for side in sides:
        side.close()
    for figure in FIGURES:
        old = statistics.median(times[("baseline", figure)])
        new = statistics.median(times[("this", figure)])
        label = figure.replace(",", ", ")
        print(f"mesapy {label}, median: baseline {old:.1f} ms, this {new:.1f} ms, "
              f"this / baseline {new / old:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
