"""The five ``env`` imports: files by data name, handles, hostile pointers (spec §5.4, §5.8).

Every malformed call from the module must be ``-1`` for the module, never a host
crash, an exception or an access outside linear memory.
"""

from __future__ import annotations

import io
from typing import BinaryIO

import pytest
from _wasm_support import (
    COPY_MODULE,
    NAME_BAD,
    NAME_IN,
    NAME_MISSING,
    NAME_OUT,
    SCRATCH,
    MemoryTaskIO,
    entry_module,
    invocation,
)

from confide.config import Limits
from confide.executors.wasm import WasmExecutor
from confide.invocation import FunctionError

PAGE = 65536
OPEN_IN = f"(call $open_input (i32.const {NAME_IN}))"
CREATE_OUT = f"(call $create_output (i32.const {NAME_OUT}))"
DATA = bytes(range(256)) * 41 + b"tail"  # 10 500 bytes, not a multiple of the 7-byte reads


@pytest.fixture(scope="module")
def executor() -> WasmExecutor:
    return WasmExecutor()


def _io() -> MemoryTaskIO:
    return MemoryTaskIO(inputs={"in": DATA, "bad": b"x"}, outputs={"out"}, corrupted={"bad"})


def _run(
    executor: WasmExecutor, body: str, task_io: MemoryTaskIO | None = None, locals_: str = ""
) -> str:
    return executor.run(invocation(entry_module(body, locals_=locals_), task_io=task_io or _io()))


def test_copies_input_to_output_by_data_name(executor: WasmExecutor) -> None:
    task_io = _io()
    assert executor.run(invocation(COPY_MODULE, task_io=task_io)) == str(len(DATA))
    assert task_io.written["out"] == DATA


def test_handles_follow_one_sequence_with_write_bit(executor: WasmExecutor) -> None:
    # open input -> 1, create output -> 0x40000002, open input again -> 3
    body = f"""
      (i32.store (i32.const {SCRATCH}) (call $open_input (i32.const {NAME_IN})))
      (i32.store (i32.const {SCRATCH + 4}) (call $create_output (i32.const {NAME_OUT})))
      (drop (call $close (i32.load (i32.const {SCRATCH}))))
      (i32.store (i32.const {SCRATCH + 8}) (call $open_input (i32.const {NAME_IN})))
      (drop (call $write (call $create_output (i32.const {NAME_OUT})) (i32.const {SCRATCH})
        (i32.const 12)))
      (i32.const 0)"""
    task_io = _io()
    _run(executor, body, task_io)
    raw = task_io.written["out"]
    handles = [int.from_bytes(raw[i : i + 4], "little") for i in (0, 4, 8)]
    assert handles == [1, 0x40000002, 3]  # closed handle 1 is not reused


def test_output_left_open_is_closed_and_kept(executor: WasmExecutor) -> None:
    body = f"""(drop (call $write (call $create_output (i32.const {NAME_OUT}))
                 (i32.const {NAME_OUT}) (i32.const 3))) (i32.const 0)"""
    task_io = _io()
    _run(executor, body, task_io)
    assert task_io.written["out"] == b"out"


def test_create_output_starts_the_file_afresh(executor: WasmExecutor) -> None:
    body = f"""
      (drop (call $write (call $create_output (i32.const {NAME_OUT})) (i32.const {NAME_IN})
        (i32.const 2)))
      (drop (call $write (call $create_output (i32.const {NAME_OUT})) (i32.const {NAME_OUT})
        (i32.const 3)))
      (i32.const 0)"""
    task_io = _io()
    _run(executor, body, task_io)
    assert task_io.written["out"] == b"out"


def test_read_at_eof_returns_zero(executor: WasmExecutor) -> None:
    task_io = MemoryTaskIO(inputs={"in": b""})
    body = f"(call $read {OPEN_IN} (i32.const {SCRATCH}) (i32.const 8))"
    assert _run(executor, body, task_io) == "0"


def test_buffer_ending_exactly_at_memory_end_is_accepted(executor: WasmExecutor) -> None:
    body = f"(call $read {OPEN_IN} (i32.const {PAGE - 4}) (i32.const 4))"
    assert _run(executor, body) == "4"


@pytest.mark.parametrize(
    "body",
    [
        # names the task does not have, or that fail their integrity check (Q29)
        f"(call $open_input (i32.const {NAME_MISSING}))",
        f"(call $open_input (i32.const {NAME_OUT}))",
        f"(call $create_output (i32.const {NAME_IN}))",
        f"(call $open_input (i32.const {NAME_BAD}))",
        # name pointers outside memory / not NUL-terminated before the end of memory
        "(call $open_input (i32.const -1))",
        "(call $open_input (i32.const 0x7fffffff))",
        f"(call $open_input (i32.const {PAGE}))",
        f"(i32.store8 (i32.const {PAGE - 1}) (i32.const 65))"
        f" (call $open_input (i32.const {PAGE - 1}))",
        # handles never issued, closed twice, or used in the wrong direction
        f"(call $read (i32.const 1) (i32.const {SCRATCH}) (i32.const 4))",
        f"(call $read (i32.const 12345) (i32.const {SCRATCH}) (i32.const 4))",
        f"(call $write (i32.const 0x40000001) (i32.const {SCRATCH}) (i32.const 4))",
        f"(call $read {CREATE_OUT} (i32.const {SCRATCH}) (i32.const 4))",
        f"(call $write {OPEN_IN} (i32.const {SCRATCH}) (i32.const 4))",
        "(call $close (i32.const 7))",
        f"(drop (call $close {OPEN_IN})) (call $close (i32.const 1))",
        # buffers outside linear memory, negative or overflowing lengths
        f"(call $read {OPEN_IN} (i32.const {PAGE - 4}) (i32.const 5))",
        f"(call $read {OPEN_IN} (i32.const -16) (i32.const 8))",
        f"(call $read {OPEN_IN} (i32.const {SCRATCH}) (i32.const -1))",
        f"(call $read {OPEN_IN} (i32.const 8) (i32.const 0x7fffffff))",
        f"(call $write {CREATE_OUT} (i32.const {PAGE}) (i32.const 1))",
        f"(call $write {CREATE_OUT} (i32.const -1) (i32.const 2))",
    ],
    ids=[
        "unknown-input",
        "output-name-as-input",
        "input-name-as-output",
        "corrupted-input",
        "name-ptr-minus-one",
        "name-ptr-far",
        "name-ptr-at-end",
        "name-unterminated",
        "read-unissued-handle",
        "read-garbage-handle",
        "write-unissued-handle",
        "read-from-write-handle",
        "write-to-read-handle",
        "close-unknown",
        "close-twice",
        "read-buffer-past-end",
        "read-buffer-negative-ptr",
        "read-negative-length",
        "read-huge-length",
        "write-buffer-at-end",
        "write-buffer-wraps",
    ],
)
def test_rejects_bad_call_with_minus_one(executor: WasmExecutor, body: str) -> None:
    task_io = _io()
    assert _run(executor, body, task_io) == "-1"
    # a refused write never reaches the output
    assert task_io.written.get("out", b"") == b""


def test_corrupted_input_is_catchable_and_task_goes_on(executor: WasmExecutor) -> None:
    # mesapy_optional_files-style: the failed open is -1, the next open works.
    body = f"""
      (if (i32.ne (call $open_input (i32.const {NAME_BAD})) (i32.const -1)) (then unreachable))
      (call $open_input (i32.const {NAME_IN}))"""
    assert _run(executor, body) == "1"


def test_handle_sequence_stops_at_1023(executor: WasmExecutor) -> None:
    body = f"""
      (block $done (loop $again
        (local.set $h (call $open_input (i32.const {NAME_IN})))
        (br_if $done (i32.lt_s (local.get $h) (i32.const 0)))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (drop (call $close (local.get $h)))
        (br $again)))
      (local.get $n)"""
    task_io = _io()
    assert _run(executor, body, task_io, locals_="(local $h i32) (local $n i32)") == "1023"
    assert len(task_io.opened) == 1023  # the 1024th open never reached TaskIO


def test_single_transfer_is_capped_and_callers_loop() -> None:
    chunk = 1000
    executor = WasmExecutor(Limits(wasm_max_io_chunk_bytes=chunk))
    body = f"(call $read {OPEN_IN} (i32.const {SCRATCH}) (i32.const 5000))"
    assert _run(executor, body) == str(chunk)
    task_io = _io()
    assert executor.run(invocation(COPY_MODULE, task_io=task_io)) == str(len(DATA))
    assert task_io.written["out"] == DATA


def test_name_cap_accepts_cap_and_refuses_cap_plus_one() -> None:
    # max_id_chars=4 -> names up to 16 UTF-8 bytes (4 chars of up to 4 bytes each)
    executor = WasmExecutor(Limits(max_id_chars=4))
    long_ok = "n" * 16
    long_bad = "n" * 17
    task_io = MemoryTaskIO(inputs={long_ok: b"a", long_bad: b"b"})
    for name, expected in ((long_ok, "1"), (long_bad, "-1")):
        extra = f'(data (i32.const 256) "{name}\\00")'
        payload = entry_module("(call $open_input (i32.const 256))", extra=extra)
        assert executor.run(invocation(payload, task_io=task_io)) == expected


class _FailingOutput(io.BytesIO):
    def write(self, data: object, /) -> int:
        raise OSError("disk full")


class _FailingTaskIO(MemoryTaskIO):
    def create_output(self, name: str) -> BinaryIO:
        super().create_output(name)
        return _FailingOutput()


def test_storage_failure_under_the_module_fails_the_task(executor: WasmExecutor) -> None:
    # The module sees -1 (and may ignore it), but the output would be incomplete:
    # the task must not end Finished + Ok.
    task_io = _FailingTaskIO(inputs={"in": DATA}, outputs={"out"})
    with pytest.raises(FunctionError, match="host file API failed"):
        executor.run(invocation(COPY_MODULE, task_io=task_io))
