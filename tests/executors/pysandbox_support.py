"""In-memory TaskIO and helpers for the Python executor tests."""

from __future__ import annotations

import io
import threading
from collections.abc import Collection
from pathlib import Path
from typing import Any, BinaryIO

from confide.config import Limits
from confide.executors import apply_caps
from confide.executors.python import PythonExecutor
from confide.invocation import (
    CorruptedInput,
    FunctionSpec,
    InvalidInputName,
    InvalidOutputName,
    Invocation,
)

HOSTILE_DIR = Path(__file__).with_name("hostile")


class _Output(io.BytesIO):
    def __init__(self, store: dict[str, bytes], name: str) -> None:
        super().__init__()
        self._store = store
        self._name = name
        store[name] = b""

    def write(self, data: Any) -> int:
        n = super().write(data)
        self._store[self._name] = self.getvalue()
        return n

    def close(self) -> None:
        if not self.closed:
            self._store[self._name] = self.getvalue()
        super().close()


class MemoryTaskIO:
    """Inputs from a dict; names in ``corrupted`` fail their integrity check."""

    def __init__(
        self,
        inputs: dict[str, bytes] | None = None,
        outputs: Collection[str] = (),
        corrupted: Collection[str] = (),
    ) -> None:
        self.inputs = dict(inputs or {})
        self.corrupted = set(corrupted)
        self._output_names = list(outputs)
        self.written: dict[str, bytes] = {}
        self.creates: list[str] = []

    def input_names(self) -> Collection[str]:
        return [*self.inputs, *self.corrupted]

    def output_names(self) -> Collection[str]:
        return self._output_names

    def open_input(self, name: str) -> BinaryIO:
        if name in self.corrupted:
            raise CorruptedInput(name, f"/tmp/{name}")
        if name not in self.inputs:
            raise InvalidInputName(name)
        return io.BytesIO(self.inputs[name])

    def create_output(self, name: str) -> BinaryIO:
        if name not in self._output_names:
            raise InvalidOutputName(name)
        self.creates.append(name)
        return _Output(self.written, name)


def invocation(
    payload: str | bytes,
    arguments: dict[str, Any] | None = None,
    task_io: MemoryTaskIO | None = None,
    *,
    logs: list[str] | None = None,
    cancel: threading.Event | None = None,
    executor_type: str = "python",
) -> Invocation:
    body = payload.encode() if isinstance(payload, str) else payload
    return Invocation(
        task_id="task-1",
        function=FunctionSpec("fn-1", "f", executor_type, body),
        arguments=dict(arguments or {}),
        io=task_io or MemoryTaskIO(),
        log=logs.append if logs is not None else None,
        cancel=cancel or threading.Event(),
    )


def small_limits(**overrides: Any) -> Limits:
    """Limits small enough for hostile tests to hit them quickly."""
    values: dict[str, Any] = {
        "python_wall_seconds": 5.0,
        "python_cpu_seconds": 3,
        "python_memory_bytes": 512 * 1024 * 1024,
        "max_output_file_bytes": 1024 * 1024,
        "max_output_bytes": 2 * 1024 * 1024,
        "python_tmp_bytes": 4 * 1024 * 1024,
        "python_max_file_bytes": 1024 * 1024,
    }
    values.update(overrides)
    return Limits(**values)


class CappedPythonExecutor(PythonExecutor):
    """A PythonExecutor run as the worker runs it: outputs and log capped by
    ``apply_caps`` with the executor's own limits."""

    def __init__(self, *, limits: Limits, prestart: int = 0) -> None:
        super().__init__(limits=limits, prestart=prestart)
        self.limits = limits

    def run(self, invocation: Invocation) -> str:
        return super().run(apply_caps(invocation, self.limits))


def executor(*, prestart: int = 0, **limit_overrides: Any) -> CappedPythonExecutor:
    return CappedPythonExecutor(limits=small_limits(**limit_overrides), prestart=prestart)


def function_pids(bwrap_pids: list[int]) -> list[int]:
    """The function processes (bwrap's children) of these sandboxes."""
    found: list[int] = []
    for pid in bwrap_pids:
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                found += [int(child) for child in f.read().split()]
        except FileNotFoundError:
            pass
    return found


def bwrap_children() -> list[int]:
    """This test process's bwrap children (its sandboxes), from every thread."""
    found: list[int] = []
    for task in Path("/proc/self/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == "bwrap":
                    found.append(int(pid))
            except FileNotFoundError:
                pass
    return found


def process_exists(pid: int) -> bool:
    """True while ``pid`` is a process (a zombie counts: it was not reaped)."""
    return Path(f"/proc/{pid}").exists()
