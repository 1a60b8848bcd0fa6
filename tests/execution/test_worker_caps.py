"""A task past a cap, run as the worker runs it (TaskRunner + Stager), for every executor.

The task ends Err with a reason naming the ``limits.`` field, nothing is
uploaded, and the task's private area is gone. Input caps are checked while
staging, before the function runs; the private area never holds more than
its cap.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from confide.config import Limits
from confide.crypto import decrypt_stream, encrypt_stream
from confide.execution import Outcome, StagedIO, Stager, TaskRunner, _staging
from confide.execution._area import AreaBudget, MeteredFile, remove_file
from confide.execution.file_agent import BufferedDestination, TooLarge
from confide.executors import CapExceeded
from confide.executors.builtin import BuiltinExecutor
from confide.executors.python import PythonExecutor
from confide.executors.wasm import WasmExecutor
from confide.staged import StagedFile, StagedTask
from tests.executors._wasm_support import flood_module

KEYS = {"aes-gcm-128": (bytes(range(16)), bytes(range(12))),
        "teaclave-file-128": (bytes(range(16)), b""),
        "confide-stream-256": (bytes(range(32)), b"")}
_CHUNK = 1 << 16


class MemoryTransport:
    """Files by URL; a download past ``max_bytes`` stops at the cap (TooLarge)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.uploaded: dict[str, bytes] = {}
        self.downloaded: list[str] = []

    def download(self, url: str, dst: BinaryIO | BufferedDestination, *, max_bytes: int) -> int:
        self.downloaded.append(url)
        data = self.files[url]
        for start in range(0, min(len(data), max_bytes), _CHUNK):
            dst.write(data[start:min(start + _CHUNK, max_bytes)])
        if len(data) > max_bytes:
            raise TooLarge(url, f"body exceeds the cap of {max_bytes} bytes")
        return len(data)

    def upload(self, url: str, src: BinaryIO, size: int) -> None:
        self.uploaded[url] = src.read(size)


class RecordingStager(Stager):
    """A Stager that keeps the StagedIO of its last task (to look at its area)."""

    last: StagedIO | None = None

    @contextmanager
    def stage(self, task_id: str, inputs: Sequence[StagedFile],
              outputs: Sequence[StagedFile]) -> Iterator[StagedIO]:
        with super().stage(task_id, inputs, outputs) as staged:
            self.last = staged
            yield staged


@pytest.fixture(autouse=True)
def private_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(_staging, "_private_root", lambda: tmp_path)
    return tmp_path


class Task:
    """One staged task and the transport its files live on."""

    def __init__(self, executor: str, executor_type: str, name: str, payload: bytes = b"",
                 arguments: dict[str, Any] | None = None) -> None:
        self.transport = MemoryTransport()
        self.staged = StagedTask(
            task_id="task-1", function_id="function-1", function_name=name,
            function_payload=payload, executor_type=executor_type, executor=executor,
            function_arguments=json.dumps(arguments or {}), inputs=(), outputs=())

    def add_input(self, name: str, plain: bytes, schema: str = "aes-gcm-128") -> int:
        """Encrypt and store ``plain``; returns the ciphertext size."""
        key, iv = KEYS[schema]
        url = f"http://files/{name}.enc"
        out = io.BytesIO()
        cmac = encrypt_stream(schema, key, iv, io.BytesIO(plain), out, file_name=f"{name}.enc")
        self.transport.files[url] = out.getvalue()
        self.staged = dataclasses.replace(self.staged, inputs=(*self.staged.inputs, StagedFile(
            name=name, url=url, cmac=cmac, schema=schema, key=key, iv=iv)))
        return len(out.getvalue())

    def add_output(self, name: str, schema: str = "aes-gcm-128") -> None:
        key, iv = KEYS[schema]
        self.staged = dataclasses.replace(self.staged, outputs=(*self.staged.outputs, StagedFile(
            name=name, url=f"http://files/{name}.out", cmac=b"", schema=schema, key=key, iv=iv)))

    def output(self, name: str) -> bytes:
        f = next(f for f in self.staged.outputs if f.name == name)
        plain = io.BytesIO()
        sealed = io.BytesIO(self.transport.uploaded[f.url])
        decrypt_stream(f.schema, f.key, f.iv, sealed, plain, file_name=f"{name}.out")
        return plain.getvalue()

    def run(self, limits: Limits) -> tuple[Outcome, StagedIO | None]:
        executors = {"builtin": BuiltinExecutor(limits), "wamr": WasmExecutor(limits),
                     "mesapy": PythonExecutor(limits=limits)}
        stager = RecordingStager(self.transport, limits)
        outcome = TaskRunner(executors, stager, limits).run(self.staged, threading.Event())
        return outcome, stager.last


def _area_is_gone(root: Path) -> bool:
    return os.listdir(root / f"confide-worker-{os.getpid()}") == []


# --- outputs: the same caps for each executor -----------------------------------

PY_FLOOD = (
    "def entrypoint(argv):\n"
    "    with teaclave_open('out', 'wb') as f:\n"
    "        for _ in range(int(argv[1]) // 1000):\n"
    "            f.write(b'p' * 1000)\n"
    "    return 'written'\n"
)


#: Writes 1000-byte blocks to output "out" until argv[1] bytes, ignoring results.
WASM_FLOOD = flood_module(1000)


def _flood_task(executor: str, n: int) -> Task:
    if executor == "wamr":
        task = Task("wamr", "wamr", "flood", WASM_FLOOD, {"n": str(n)})
    else:
        task = Task("mesapy", "python", "flood", PY_FLOOD.encode(), {"n": str(n)})
    task.add_output("out")
    return task


@pytest.mark.parametrize("executor", ["wamr", "mesapy"])
def test_output_at_the_cap_is_uploaded(executor: str) -> None:
    task = _flood_task(executor, 10_000)
    outcome, _ = task.run(Limits(max_output_file_bytes=10_000))
    assert outcome.ok, outcome.reason
    assert len(task.output("out")) == 10_000


@pytest.mark.parametrize("executor", ["wamr", "mesapy"])
def test_output_past_the_cap_fails_the_task_and_uploads_nothing(
    executor: str, private_root: Path
) -> None:
    task = _flood_task(executor, 200_000)
    outcome, staged = task.run(Limits(max_output_file_bytes=10_000))
    assert not outcome.ok
    assert outcome.reason == ("Runtime Error: output 'out' exceeds the 10000-byte per-file "
                              "output cap (limits.max_output_file_bytes)")
    assert task.transport.uploaded == {}
    assert _area_is_gone(private_root)
    assert staged is not None and staged.area.peak <= 10_000


def _intersect_task(n: int) -> Task:
    task = Task("builtin", "builtin", "builtin-ordered-set-intersect",
                arguments={"order": "ascending"})
    items = b"".join(b"%04x\n" % i for i in range(n))
    task.add_input("input_data1", items)
    task.add_input("input_data2", items)
    task.add_output("output_result1")
    task.add_output("output_result2")
    return task


def test_builtin_outputs_at_the_per_task_cap_are_uploaded() -> None:
    task = _intersect_task(100)
    outcome, _ = task.run(Limits(max_output_bytes=200))
    assert outcome.ok, outcome.reason
    assert task.output("output_result2") == b"1" * 100


def test_builtin_outputs_past_the_per_task_cap_fail_and_upload_nothing(
    private_root: Path,
) -> None:
    task = _intersect_task(100)
    outcome, _ = task.run(Limits(max_output_bytes=199))
    assert (outcome.ok, outcome.reason) == (False, (
        "Runtime Error: outputs exceed the 199-byte per-task output cap "
        "(limits.max_output_bytes)"))
    assert task.transport.uploaded == {}
    assert _area_is_gone(private_root)


# --- inputs: checked while staging -----------------------------------------------


def _echo_with_inputs(*sizes: int) -> tuple[Task, int]:
    task = Task("builtin", "builtin", "builtin-echo", arguments={"message": "ran"})
    received = sum(task.add_input(f"in{i}", b"d" * size) for i, size in enumerate(sizes))
    return task, received


def test_inputs_at_the_input_cap_are_staged() -> None:
    task, received = _echo_with_inputs(3000, 4000)
    outcome, _staged = task.run(Limits(max_input_bytes=received))
    assert (outcome.ok, outcome.return_value) == (True, b"ran")


def test_inputs_past_the_input_cap_fail_at_staging(private_root: Path) -> None:
    task, received = _echo_with_inputs(3000, 4000)
    outcome, staged = task.run(Limits(max_input_bytes=received - 1))
    assert (outcome.ok, outcome.reason) == (False, (
        f"Runtime Error: inputs exceed the {received - 1}-byte staged input cap "
        "(limits.max_input_bytes)"))
    assert staged is None  # failed while staging: the function never ran
    assert _area_is_gone(private_root)


def test_a_single_input_past_the_input_cap_is_never_received_whole() -> None:
    stored: list[int] = []
    task, _ = _echo_with_inputs(1 << 20)
    inner = MemoryTransport.download

    def download(self: MemoryTransport, url: str, dst: Any, *, max_bytes: int) -> int:
        stored.append(max_bytes)
        return inner(self, url, dst, max_bytes=max_bytes)

    task.transport.download = download.__get__(task.transport)  # type: ignore[method-assign]
    outcome, _ = task.run(Limits(max_input_bytes=4096))
    assert outcome.reason.endswith("(limits.max_input_bytes)")
    assert stored == [4096]  # the file agent was told to stop at the cap


# --- the private area: inputs, their plaintext, outputs, sealed copies ----------


def test_teaclave_file_staged_past_the_area_cap_fails_naming_it(private_root: Path) -> None:
    # teaclave-file-128 is decrypted while it downloads: the area holds its plaintext
    # only (no ciphertext copy), and the cap is met while staging the second input.
    task = Task("builtin", "builtin", "builtin-ordered-set-intersect",
                arguments={"order": "ascending"})
    items = b"".join(b"%04x\n" % i for i in range(2000))  # 10 000 bytes
    task.add_input("input_data1", items, "teaclave-file-128")
    task.add_input("input_data2", items, "teaclave-file-128")
    task.add_output("output_result1")
    task.add_output("output_result2")
    assert task.run(Limits(max_task_area_bytes=2 * len(items) + 30_000))[0].ok
    task.transport.uploaded.clear()
    cap = 2 * len(items) - 1
    outcome, staged = task.run(Limits(max_task_area_bytes=cap))
    assert (outcome.ok, outcome.reason) == (False, (
        f"Runtime Error: the task's private area exceeds the {cap}-byte "
        "private area cap (limits.max_task_area_bytes)"))
    assert staged is None  # failed while staging: the function never ran
    assert task.transport.uploaded == {}
    assert _area_is_gone(private_root)


def test_outputs_past_the_area_cap_fail_even_under_the_output_caps(private_root: Path) -> None:
    task = _flood_task("wamr", 100_000)
    outcome, staged = task.run(Limits(max_task_area_bytes=50_000))
    assert outcome.reason.endswith("private area cap (limits.max_task_area_bytes)")
    assert staged is not None and staged.area.peak <= 50_000
    assert task.transport.uploaded == {}


def test_inputs_are_removed_before_the_outputs_are_sealed() -> None:
    # 10 000 bytes of input, a 10 000-byte output and its ~10 kB sealed copy:
    # 30 kB if the input stayed, 20 kB at most as the input goes first.
    task = _flood_task("wamr", 10_000)
    task.add_input("unused", b"i" * 10_000)
    outcome, staged = task.run(Limits(max_task_area_bytes=25_000))
    assert outcome.ok, outcome.reason
    assert staged is not None and staged.area.used == 0


# --- logs -------------------------------------------------------------------------


def test_log_at_the_line_cap_is_reported_and_cap_plus_one_fails() -> None:
    task = Task("builtin", "builtin", "builtin-echo",
                arguments={"message": "hi", "save_log": "true"})
    outcome, _ = task.run(Limits(max_log_lines=1))
    assert (outcome.ok, outcome.log) == (True, ["[INFO teaclave_function::echo] hi"])
    outcome, _ = task.run(Limits(max_log_lines=0))
    assert (outcome.ok, outcome.reason) == (False, (
        "Runtime Error: log exceeds the 0-line log cap (limits.max_log_lines)"))


# --- the area's accounting ---------------------------------------------------------


def test_metered_file_charges_growth_once_and_refunds_truncation(tmp_path: Path) -> None:
    area = AreaBudget(100)
    with open(tmp_path / "f", "wb") as raw:
        f = MeteredFile(raw, area)
        f.write(b"x" * 60)
        f.seek(10)
        f.write(b"y" * 50)  # rewrites bytes already charged
        assert (area.used, f.tell()) == (60, 60)
        f.seek(0)
        f.truncate()  # what a retried download does
        assert area.used == 0
        f.write(b"z" * 100)  # exactly at the cap
        with pytest.raises(CapExceeded) as info:
            f.write(b"!")
    assert info.value.field == "max_task_area_bytes"
    assert (tmp_path / "f").read_bytes() == b"z" * 100  # the refused byte was not written
    assert area.peak == 100


def test_removing_a_file_gives_its_bytes_back(tmp_path: Path) -> None:
    area = AreaBudget(10)
    path = tmp_path / "f"
    with open(path, "wb") as raw:
        MeteredFile(raw, area).write(b"x" * 10)
    remove_file(path, area)
    assert (area.used, path.exists()) == (0, False)
    remove_file(path, area)  # already gone: nothing to do
