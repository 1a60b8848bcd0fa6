"""Confidential inference: an inference task vs the same model run plainly, in one run.

Run: ``.venv/bin/python bench/inference.py [--runs N] [--batches 400,4000]``.

The model owner's MLP (ONNX, trained on scikit-learn's bundled digits) classifies a
batch of images:

* plain: this process reads the model and the batch, creates an ONNX Runtime
  session with the engine's options and runs it (what the engine does, without
  confide);
* task, pre-started: the engine's source run by the ``mesapy`` executor in a
  sandbox that was started (hardened, numpy and ONNX Runtime imported) before
  its task -- staging the inputs as sealed memfds, the hand-over, the run, the
  labels written back; the pool refills between tasks, untimed;
* task, cold: the same in a sandbox started for the task.

Also the wasm engine (``wamr``) vs the same fixed-point model run plainly with
numpy. Runs are interleaved so that every variant sees the same machine load.
Target: task <= 1.2 x plain + 50 ms per batch. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import statistics
import threading
import time
from collections.abc import Callable, Collection
from typing import BinaryIO

import numpy as np

# bench/ is not a package: this file's directory is on sys.path when run as a script.
from _speed import speed_line

from confide.executors.python import PythonExecutor
from confide.executors.wasm import WasmExecutor
from confide.inference import (
    ONNX_ENGINE_SOURCE,
    encode_images,
    load_digits_split,
    plain_onnx_predict,
    train_models,
    wasm_engine,
)
from confide.invocation import FunctionSpec, InvalidInputName, InvalidOutputName, Invocation


class _Output(io.BytesIO):
    def __init__(self, store: dict[str, bytes], name: str) -> None:
        super().__init__()
        self._store, self._name = store, name

    def close(self) -> None:
        if not self.closed:
            self._store[self._name] = self.getvalue()
        super().close()


class _EngineIO:
    """The task's files in memory: inputs model and images, output labels."""

    def __init__(self, model: bytes, images: bytes) -> None:
        self.inputs = {"model": model, "images": images}
        self.written: dict[str, bytes] = {}

    def input_names(self) -> Collection[str]:
        return self.inputs.keys()

    def output_names(self) -> Collection[str]:
        return ("labels",)

    def open_input(self, name: str) -> BinaryIO:
        if name not in self.inputs:
            raise InvalidInputName(name)
        return io.BytesIO(self.inputs[name])

    def create_output(self, name: str) -> BinaryIO:
        if name != "labels":
            raise InvalidOutputName(name)
        return _Output(self.written, name)


def _invocation(executor_type: str, payload: bytes, model: bytes, images: bytes
                ) -> tuple[Invocation, _EngineIO]:
    task_io = _EngineIO(model, images)
    return Invocation(task_id="bench", function=FunctionSpec("f", "engine", executor_type, payload),
                      arguments={}, io=task_io, cancel=threading.Event()), task_io


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--batches", default="400,4000", help="images per batch, comma-separated")
    args = parser.parse_args()
    split = load_digits_split(400)
    models = train_models(split)
    linear = models.linear.to_bytes()
    source = ONNX_ENGINE_SOURCE.encode()
    module = wasm_engine()
    cold = PythonExecutor()
    warm = PythonExecutor(prestart=1)
    wasm = WasmExecutor()
    print(speed_line())
    rows: list[tuple[str, int, float, float]] = []  # (variant, batch, task s, plain s)
    for batch in (int(b) for b in args.batches.split(",")):
        reps = -(-batch // len(split.images))
        images = np.tile(split.images, (reps, 1))[:batch]
        pixels = encode_images(images)
        expected = plain_onnx_predict(models.onnx, images)

        def plain_onnx(images: np.ndarray = images, pixels: bytes = pixels) -> object:
            # as the engine: bytes in, a session, one run, label bytes out
            got = np.frombuffer(pixels, dtype=np.uint8).reshape(-1, images.shape[1])
            return plain_onnx_predict(bytes(models.onnx), got).tobytes()

        def task(executor: PythonExecutor, pixels: bytes = pixels,
                 expected: np.ndarray = expected) -> Callable[[], object]:
            def run() -> object:
                invocation, task_io = _invocation("python", source, models.onnx, pixels)
                result = executor.run(invocation)
                if not np.array_equal(np.frombuffer(task_io.written["labels"], np.uint8), expected):
                    raise RuntimeError(f"labels differ from the plain run ({result})")
                return result
            return run

        def wasm_task(pixels: bytes = pixels, images: np.ndarray = images) -> object:
            invocation, task_io = _invocation("wamr", module, linear, pixels)
            wasm.run(invocation)
            if task_io.written["labels"] != models.linear.predict(images).tobytes():
                raise RuntimeError("wasm labels differ from the plain run")
            return None

        def plain_linear(images: np.ndarray = images) -> object:
            return models.linear.predict(images).tobytes()

        times: dict[str, list[float]] = {k: [] for k in
                                         ("plain", "pre-started", "cold", "wasm", "wasm plain")}
        task(cold)()  # page cache, the start-up check
        for _ in range(args.runs):
            if not warm.wait_prestarted(60.0):  # untimed: the pool refills between tasks
                raise RuntimeError("the pre-started sandbox did not become ready")
            times["pre-started"].append(_timed(task(warm)))
            times["plain"].append(_timed(plain_onnx))
            times["cold"].append(_timed(task(cold)))
            times["wasm"].append(_timed(wasm_task))
            times["wasm plain"].append(_timed(plain_linear))
        med = {k: statistics.median(v) for k, v in times.items()}
        rows += [("onnx, pre-started sandbox", batch, med["pre-started"], med["plain"]),
                 ("onnx, cold sandbox", batch, med["cold"], med["plain"]),
                 ("wasm linear engine", batch, med["wasm"], med["wasm plain"])]
    warm.close()
    print(f"medians of {args.runs} interleaved runs; labels checked equal to the plain run "
          f"every time")
    header = (f"{'variant':28} {'batch':>6} {'plain ms':>9} {'task ms':>9} {'ratio':>6} "
              f"{'+ms':>7}  target <= 1.2x plain + 50 ms")
    print(header)
    print("-" * len(header))
    for variant, batch, task_s, plain_s in rows:
        verdict = "met" if task_s <= 1.2 * plain_s + 0.050 else "NOT met"
        print(f"{variant:28} {batch:>6} {plain_s * 1000:>9.1f} {task_s * 1000:>9.1f} "
              f"{task_s / plain_s:>6.2f} {(task_s - plain_s) * 1000:>7.1f}  {verdict}")


if __name__ == "__main__":
    main()
