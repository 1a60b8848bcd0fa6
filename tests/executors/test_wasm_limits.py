"""Platform limits on a wasm run: time, memory, cancel, and the module cache (spec §5.8, Q22)."""

from __future__ import annotations

import io
import itertools
import threading
import time
from typing import BinaryIO

import pytest
import wasmtime
from _wasm_support import ADD_MODULE, LOOP_FOREVER, MemoryTaskIO, entry_module, invocation

from confide.config import Limits
from confide.executors.wasm import WasmExecutor
from confide.invocation import CancelledError, FunctionError

PAGE = 65536
MiB = 1024 * 1024

#: Grows memory one page at a time until refused, then traps (what an allocator does).
GROW_THEN_ABORT = entry_module(
    "(block $full (loop $grow"
    " (br_if $full (i32.lt_s (memory.grow (i32.const 1)) (i32.const 0)))"
    " (br $grow))) unreachable"
)
#: Same, but handles the refusal and returns its page count.
GROW_THEN_RETURN = entry_module(
    "(block $full (loop $grow"
    " (br_if $full (i32.lt_s (memory.grow (i32.const 1)) (i32.const 0)))"
    " (br $grow))) (memory.size)"
)


def _cancel_after(event: threading.Event, seconds: float) -> threading.Thread:
    def fire() -> None:
        time.sleep(seconds)
        event.set()

    thread = threading.Thread(target=fire)
    thread.start()
    return thread


# --- time ---


def test_infinite_loop_is_stopped_by_the_time_limit() -> None:
    executor = WasmExecutor(Limits(wasm_max_run_seconds=0.2))
    started = time.monotonic()
    with pytest.raises(FunctionError, match=r"Runtime Error: time limit exceeded \(0.2 s\)"):
        executor.run(invocation(LOOP_FOREVER))
    assert time.monotonic() - started < 3


def test_infinite_loop_in_start_function_is_stopped() -> None:
    payload = wasmtime.wat2wasm(
        """(module (func $spin (loop $l (br $l))) (start $spin)
        (func (export "entrypoint") (param i32 i32) (result i32) (i32.const 1)))"""
    )
    executor = WasmExecutor(Limits(wasm_max_run_seconds=0.2))
    with pytest.raises(FunctionError, match="time limit exceeded"):
        executor.run(invocation(payload))


def test_time_limit_uses_the_injected_clock() -> None:
    # A clock that jumps past the deadline on its second reading stops the run
    # at once, whatever the wall clock says.
    readings = itertools.chain([0.0], itertools.repeat(10_000.0))
    executor = WasmExecutor(Limits(wasm_max_run_seconds=60), clock=lambda: next(readings))
    started = time.monotonic()
    with pytest.raises(FunctionError, match="time limit exceeded"):
        executor.run(invocation(LOOP_FOREVER))
    assert time.monotonic() - started < 3


def test_executor_is_usable_after_a_stopped_run() -> None:
    executor = WasmExecutor(Limits(wasm_max_run_seconds=0.1))
    with pytest.raises(FunctionError):
        executor.run(invocation(LOOP_FOREVER))
    assert executor.run(invocation(ADD_MODULE, {"adder1": "3", "adder2": "4"})) == "7"


# --- cancel ---


def test_cancel_stops_a_running_module_promptly() -> None:
    executor = WasmExecutor()
    inv = invocation(LOOP_FOREVER)
    started = time.monotonic()
    helper = _cancel_after(inv.cancel, 0.1)
    with pytest.raises(CancelledError):
        executor.run(inv)
    helper.join()
    assert time.monotonic() - started < 2


def test_cancel_before_start_runs_nothing() -> None:
    task_io = MemoryTaskIO(inputs={"in": b"x"})
    inv = invocation(entry_module("(call $open_input (i32.const 0))"), task_io=task_io)
    inv.cancel.set()
    with pytest.raises(CancelledError):
        WasmExecutor().run(inv)
    assert task_io.opened == []


class _GatedInput(io.BytesIO):
    """Reads as empty until ``gate`` is set, then yields one byte."""

    def __init__(self, gate: threading.Event) -> None:
        super().__init__()
        self._gate = gate

    def read(self, size: int | None = -1) -> bytes:
        return b"x" if self._gate.is_set() else b""


class _GatedTaskIO(MemoryTaskIO):
    def __init__(self, gate: threading.Event) -> None:
        super().__init__(inputs={"in": b""})
        self._gate = gate

    def open_input(self, name: str) -> BinaryIO:
        super().open_input(name)
        return _GatedInput(self._gate)


def test_cancelling_one_run_leaves_a_concurrent_run_alone() -> None:
    # Both stores share the engine's epoch; only the cancelled one may stop.
    # The survivor spins (polling its input) until the victim has been stopped.
    executor = WasmExecutor()
    polling = entry_module(
        "(local.set $h (call $open_input (i32.const 0)))"
        " (block $done (loop $poll"
        " (local.set $n (i32.add (local.get $n) (i32.const 1)))"
        " (br_if $done (i32.gt_s (call $read (local.get $h) (i32.const 1024) (i32.const 1))"
        " (i32.const 0))) (br $poll))) (i32.gt_u (local.get $n) (i32.const 1))",
        locals_="(local $h i32) (local $n i32)",
    )
    victim_stopped = threading.Event()
    victim = invocation(LOOP_FOREVER, task_id="victim")
    outcome: dict[str, object] = {}

    def run_survivor() -> None:
        task_io = _GatedTaskIO(victim_stopped)
        outcome["survivor"] = executor.run(invocation(polling, task_io=task_io, task_id="s"))

    survivor = threading.Thread(target=run_survivor)
    survivor.start()
    helper = _cancel_after(victim.cancel, 0.05)
    with pytest.raises(CancelledError):
        executor.run(victim)
    victim_stopped.set()
    helper.join()
    survivor.join(timeout=30)
    assert outcome["survivor"] == "1"  # it kept polling across the cancel, then finished


# --- memory ---


def test_memory_exhaustion_is_a_platform_error() -> None:
    executor = WasmExecutor(Limits(wasm_max_memory_bytes=2 * MiB))
    with pytest.raises(FunctionError, match=r"Runtime Error: memory limit exceeded \(2097152"):
        executor.run(invocation(GROW_THEN_ABORT))


def test_refused_grow_is_minus_one_to_the_module() -> None:
    executor = WasmExecutor(Limits(wasm_max_memory_bytes=2 * MiB))
    assert executor.run(invocation(GROW_THEN_RETURN)) == str(2 * MiB // PAGE)


def test_trap_far_below_the_memory_cap_is_the_functions_trap() -> None:
    executor = WasmExecutor(Limits(wasm_max_memory_bytes=2 * MiB))
    assert executor.run(invocation(entry_module("unreachable"))) == "Exception: unreachable"


def test_rejects_module_whose_initial_memory_exceeds_the_cap() -> None:
    executor = WasmExecutor(Limits(wasm_max_memory_bytes=4 * PAGE))
    fits = entry_module("(i32.const 1)", pages=4)
    too_big = entry_module("(i32.const 1)", pages=5)
    assert executor.run(invocation(fits)) == "1"
    with pytest.raises(FunctionError, match=r"cannot instantiate.*memory"):
        executor.run(invocation(too_big))


def test_rejects_arguments_that_do_not_fit_under_the_memory_cap() -> None:
    executor = WasmExecutor(Limits(wasm_max_memory_bytes=2 * PAGE))
    payload = entry_module("(local.get $argc)")
    assert executor.run(invocation(payload, {"k": "v" * 60_000})) == "2"
    with pytest.raises(FunctionError, match="no room for arguments"):
        executor.run(invocation(payload, {"k": "v" * 70_000}))


def test_rejects_arguments_when_module_memory_cannot_grow() -> None:
    payload = wasmtime.wat2wasm(
        """(module (memory (export "memory") 1 1)
        (func (export "entrypoint") (param i32 i32) (result i32) (local.get 0)))"""
    )
    assert WasmExecutor().run(invocation(payload)) == "0"
    with pytest.raises(FunctionError, match="no room for arguments"):
        WasmExecutor().run(invocation(payload, {"k": "v"}))


def test_rejects_huge_table() -> None:
    payload = wasmtime.wat2wasm(
        """(module (table 2000000 funcref)
        (func (export "entrypoint") (param i32 i32) (result i32) (i32.const 1)))"""
    )
    with pytest.raises(FunctionError, match="cannot instantiate"):
        WasmExecutor().run(invocation(payload))


# --- module cache ---


def test_same_payload_is_compiled_once() -> None:
    executor = WasmExecutor()
    for _ in range(3):
        executor.run(invocation(ADD_MODULE, {"adder1": "1", "adder2": "1"}))
    assert executor.engine.cached_modules() == 1


def test_cache_evicts_least_recently_used_beyond_its_cap() -> None:
    executor = WasmExecutor(Limits(wasm_module_cache_entries=2))
    payloads = [entry_module(f"(i32.const {n})") for n in range(4)]
    for n, payload in enumerate(payloads):
        assert executor.run(invocation(payload)) == str(n)
    assert executor.engine.cached_modules() == 2


def test_cache_respects_its_byte_budget() -> None:
    args = {"adder1": "1", "adder2": "1"}
    over = WasmExecutor(Limits(wasm_module_cache_bytes=len(ADD_MODULE) - 1))
    over.run(invocation(ADD_MODULE, args))
    assert over.engine.cached_modules() == 0
    exact = WasmExecutor(Limits(wasm_module_cache_bytes=len(ADD_MODULE)))
    exact.run(invocation(ADD_MODULE, args))
    assert exact.engine.cached_modules() == 1


# --- stack ---

RECURSE_2000 = entry_module(
    "(call $depth (i32.const 2000))",
    extra="(func $depth (param i32) (result i32)"
    " (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0))"
    " (else (i32.add (i32.const 1) (call $depth (i32.sub (local.get 0) (i32.const 1)))))))",
)


def test_stack_cap_bounds_recursion_depth() -> None:
    assert WasmExecutor().run(invocation(RECURSE_2000)) == "2000"
    small = WasmExecutor(Limits(wasm_max_stack_bytes=16 * 1024))
    assert small.run(invocation(RECURSE_2000)) == "Exception: wasm operand stack overflow"


def test_invalid_module_is_not_cached() -> None:
    executor = WasmExecutor()
    with pytest.raises(FunctionError):
        executor.run(invocation(b"\x00asm\x01\x00\x00\x00\xff"))
    assert executor.engine.cached_modules() == 0
