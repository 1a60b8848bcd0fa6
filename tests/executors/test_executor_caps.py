"""Caps on what a task makes, the same for every executor (Limits.max_output_*, max_log_*).

Each executor runs under ``apply_caps`` as the worker runs it; each cap is
checked at its value (accepted) and at value + 1 (the task fails with a reason
naming the ``limits.`` field, and the refused bytes never reach the sink).
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from _wasm_support import (
    ATOI,
    NAME_OUT,
    SCRATCH,
    MemoryTaskIO,
    build_c_modules,
    entry_module,
    invocation,
)
from pysandbox_support import MemoryTaskIO as PyTaskIO
from pysandbox_support import executor as python_executor
from pysandbox_support import invocation as py_invocation

import confide.executors
from confide.config import Limits
from confide.executors import CapExceeded, FunctionError, apply_caps
from confide.executors._caps import CappedOutput, LogCap, OutputBudget, format_cap
from confide.executors._sandbox import SandboxFailure
from confide.executors.wasm import WasmExecutor

#: Writes argv[1] bytes to "out" in 4 KiB calls and ignores every result (an
#: attacker's loop: it only ends when the run is stopped or n is reached).
FLOOD_WAT = entry_module(
    f"""
    (local.set $n (call $atoi (i32.load offset=4 (local.get $argv))))
    (local.set $out (call $create_output (i32.const {NAME_OUT})))
    (block $done (loop $more
      (br_if $done (i32.ge_u (local.get $written) (local.get $n)))
      (local.set $k (select (i32.const 4096) (i32.sub (local.get $n) (local.get $written))
        (i32.lt_u (i32.const 4096) (i32.sub (local.get $n) (local.get $written)))))
      (drop (call $write (local.get $out) (i32.const {SCRATCH}) (local.get $k)))
      (local.set $written (i32.add (local.get $written) (local.get $k)))
      (br $more)))
    (drop (call $close (local.get $out)))
    (i32.const 0)""",
    locals_="(local $n i32) (local $out i32) (local $written i32) (local $k i32)",
    extra=ATOI,
)


def test_the_cap_api_is_public() -> None:
    assert {"CapExceeded", "apply_caps"} <= set(confide.executors.__all__)
    assert issubclass(CapExceeded, FunctionError)


@pytest.mark.parametrize(("value", "unit", "text"), [
    (256 << 20, "bytes", "256 MiB"), (2 << 30, "bytes", "2 GiB"), (64 << 10, "bytes", "64 KiB"),
    (1000, "bytes", "1000-byte"), (1, "bytes", "1-byte"), (10_000, "lines", "10000-line"),
])
def test_caps_are_named_in_units_an_operator_sets(value: int, unit: str, text: str) -> None:
    assert format_cap(value, unit) == text


def test_reason_names_the_output_the_cap_and_the_limits_field() -> None:
    budget = OutputBudget(Limits(max_output_file_bytes=256 << 20))
    with pytest.raises(CapExceeded) as info:
        budget.charge("x", 256 << 20, 1)
    assert info.value.reason == ("Runtime Error: output 'x' exceeds the 256 MiB per-file output "
                                 "cap (limits.max_output_file_bytes)")
    assert (info.value.field, info.value.limit, info.value.cause) == (
        "max_output_file_bytes", 256 << 20, "output")


def test_write_past_the_cap_leaves_nothing_of_it_in_the_sink() -> None:
    sink = io.BytesIO()
    out = CappedOutput(sink, "o", OutputBudget(Limits(max_output_file_bytes=10)))
    out.write(b"x" * 9)
    with pytest.raises(CapExceeded):
        out.write(b"yy")  # would end at 11
    out.write(b"z")  # exactly at the cap
    assert sink.getvalue() == b"x" * 9 + b"z"


def test_log_cap_forwards_nothing_past_it() -> None:
    lines: list[str] = []
    cap = LogCap(lines.append, Limits(max_log_lines=100, max_log_bytes=6))
    cap("abc")
    cap("déf"[:2])  # "dé" is 3 bytes in UTF-8: 6 in all, at the cap
    with pytest.raises(CapExceeded) as info:
        cap("g")
    assert lines == ["abc", "dé"]
    assert info.value.reason == (
        "Runtime Error: log exceeds the 6-byte log cap (limits.max_log_bytes)")


# --- wasm ----------------------------------------------------------------------


def _wasm_run(payload: bytes, n: int, limits: Limits, task_io: MemoryTaskIO) -> str:
    inv = apply_caps(invocation(payload, {"n": str(n)}, task_io), limits)
    return WasmExecutor(limits).run(inv)


def test_wasm_output_at_the_per_file_cap_is_kept_and_cap_plus_one_fails() -> None:
    limits = Limits(max_output_file_bytes=10_000)
    kept = MemoryTaskIO(outputs={"out"})
    assert _wasm_run(FLOOD_WAT, 10_000, limits, kept) == "0"
    assert len(kept.written["out"]) == 10_000
    refused = MemoryTaskIO(outputs={"out"})
    with pytest.raises(CapExceeded) as info:
        _wasm_run(FLOOD_WAT, 10_001, limits, refused)
    assert info.value.reason == ("Runtime Error: output 'out' exceeds the 10000-byte per-file "
                                 "output cap (limits.max_output_file_bytes)")
    assert len(refused.written["out"]) <= 10_000


def test_wasm_output_at_the_per_task_cap_is_kept_and_cap_plus_one_fails() -> None:
    limits = Limits(max_output_bytes=10_000)
    assert _wasm_run(FLOOD_WAT, 10_000, limits, MemoryTaskIO(outputs={"out"})) == "0"
    with pytest.raises(CapExceeded) as info:
        _wasm_run(FLOOD_WAT, 10_001, limits, MemoryTaskIO(outputs={"out"}))
    assert info.value.field == "max_output_bytes"
    assert info.value.reason.endswith("per-task output cap (limits.max_output_bytes)")


def test_wasm_module_that_ignores_the_refusal_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    # 2 GiB asked for, a 64 KiB cap: without the stop the module would go on
    # calling write (~500 000 more times, each -1); the run ends at the refusal.
    calls: list[int] = []
    charge = OutputBudget.charge

    def counted(self: OutputBudget, name: str, size: int, n: int) -> None:
        calls.append(n)
        charge(self, name, size, n)

    monkeypatch.setattr(OutputBudget, "charge", counted)
    limits = Limits(max_output_file_bytes=64 << 10, wasm_max_run_seconds=60.0)
    task_io = MemoryTaskIO(outputs={"out"})
    with pytest.raises(CapExceeded):
        _wasm_run(FLOOD_WAT, 0x7FFF_FFFF, limits, task_io)
    assert len(task_io.written["out"]) == 64 << 10
    assert 17 <= len(calls) < 100  # 16 accepted, the refused one, then stopped


def test_wasm_c_function_writing_1_31_gb_stops_at_the_cap(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    flood = build_c_modules(tmp_path_factory.mktemp("wasm-c"))["flood_output"]
    limits = Limits(max_output_file_bytes=1 << 20)
    task_io = MemoryTaskIO(outputs={"out"})
    with pytest.raises(CapExceeded) as info:
        WasmExecutor(limits).run(apply_caps(invocation(flood, {}, task_io), limits))
    assert info.value.reason == ("Runtime Error: output 'out' exceeds the 1 MiB per-file output "
                                 "cap (limits.max_output_file_bytes)")
    assert len(task_io.written["out"]) == 1 << 20  # memory held: the cap, not 1.31 GB


def test_capped_invocation_keeps_the_cancel_switch() -> None:
    inv = invocation(FLOOD_WAT, {"n": "1"}, MemoryTaskIO(outputs={"out"}))
    capped = apply_caps(inv, Limits())
    assert capped.cancel is inv.cancel
    inv.cancel.set()
    with pytest.raises(confide.executors.CancelledError):
        WasmExecutor().run(capped)


# --- python --------------------------------------------------------------------

PY_WRITE = (
    "def entrypoint(argv):\n"
    "    n = int(argv[1])\n"
    "    for name in ('a', 'b'):\n"
    "        with teaclave_open(name, 'wb') as f:\n"
    "            f.write(b'x' * n)\n"
    "    return 'ok'\n"
)


def _py_run(n: int, **limits: Any) -> tuple[str, PyTaskIO]:
    task_io = PyTaskIO(outputs=["a", "b"])
    return python_executor(**limits).run(py_invocation(PY_WRITE, {"n": n}, task_io)), task_io


def test_python_outputs_at_the_per_task_cap_are_kept_and_cap_plus_one_fails() -> None:
    result, task_io = _py_run(500, max_output_bytes=1000)
    assert (result, task_io.written) == ("ok", {"a": b"x" * 500, "b": b"x" * 500})
    with pytest.raises(SandboxFailure) as info:
        _py_run(501, max_output_bytes=1001)  # 1002 bytes in all
    assert (info.value.cause, info.value.reason) == (
        "output", "Runtime Error: outputs exceed the 1001-byte per-task output cap "
                  "(limits.max_output_bytes)")


def test_python_function_writing_far_past_the_cap_holds_at_most_the_cap() -> None:
    src = (
        "def entrypoint(argv):\n"
        "    with teaclave_open('a', 'wb') as f:\n"
        "        for _ in range(20000):\n"
        "            f.write(bytes(65536))\n"
    )
    task_io = PyTaskIO(outputs=["a"])
    with pytest.raises(SandboxFailure) as info:
        python_executor(max_output_file_bytes=1 << 20).run(py_invocation(src, {}, task_io))
    assert info.value.reason.endswith("(limits.max_output_file_bytes)")
    assert len(task_io.written["a"]) <= 1 << 20
