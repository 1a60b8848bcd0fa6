"""WasmExecutor: results, argv layout, traps and load failures (spec §5.2, §5.3, §5.8, Q22)."""

from __future__ import annotations

import struct

import pytest
import wasmtime
from _wasm_support import (
    ADD_MODULE,
    ARGV_DUMP_MODULE,
    MemoryTaskIO,
    entry_module,
    invocation,
)

import confide.executors.wasm as wasm_module
from confide.config import Limits
from confide.executors._args import flatten_arguments
from confide.executors.wasm import WasmExecutor
from confide.invocation import FunctionError


@pytest.fixture(scope="module")
def executor() -> WasmExecutor:
    return WasmExecutor()


def test_public_surface_is_pinned() -> None:
    assert wasm_module.__all__ == ["ENTRYPOINT", "WasmExecutor"]
    assert WasmExecutor.name == "wamr"


# --- results ---


def test_simple_add_returns_decimal_text_like_wasm_c_simple_add(executor: WasmExecutor) -> None:
    result = executor.run(invocation(ADD_MODULE, {"adder1": "3", "adder2": "4"}))
    assert result == "7"


def test_non_string_arguments_arrive_as_json_text(executor: WasmExecutor) -> None:
    # 3 and 4 as JSON numbers are flattened to "3" and "4" (spec §5.2).
    assert executor.run(invocation(ADD_MODULE, {"adder1": 30, "adder2": 12})) == "42"


def test_negative_return_value_is_signed_decimal(executor: WasmExecutor) -> None:
    payload = entry_module("(i32.const -5)")
    assert executor.run(invocation(payload)) == "-5"


def test_return_value_is_i32_wrapped(executor: WasmExecutor) -> None:
    payload = entry_module("(i32.add (i32.const 0x7fffffff) (i32.const 1))")
    assert executor.run(invocation(payload)) == "-2147483648"


# --- argv layout ---


def test_argv_strings_are_sorted_key_value_pairs(executor: WasmExecutor) -> None:
    arguments = {"zeta": "last", "alpha": [1, 2], "mid": {"b": 1, "a": 1.0}, "flag": True}
    task_io = MemoryTaskIO(outputs={"out"})
    result = executor.run(invocation(ARGV_DUMP_MODULE, arguments, task_io))
    flat = flatten_arguments(arguments)
    assert result == str(len(flat)) == "8"
    assert task_io.written["out"].decode() == "".join(s + "\n" for s in flat)
    assert flat[:2] == ["alpha", "[1,2]"]


def test_argv_handles_utf8_and_empty_values(executor: WasmExecutor) -> None:
    arguments = {"name": "Zoë ✓", "empty": ""}
    task_io = MemoryTaskIO(outputs={"out"})
    executor.run(invocation(ARGV_DUMP_MODULE, arguments, task_io))
    assert task_io.written["out"] == "empty\n\nname\nZoë ✓\n".encode()


def test_argv_lives_above_the_modules_initial_memory(executor: WasmExecutor) -> None:
    # The module owns its 2 initial pages; the host must not write argv there.
    payload = entry_module("(local.get $argv)", pages=2)
    assert int(executor.run(invocation(payload, {"k": "v"}))) >= 2 * 65536


def test_argv_pointer_array_has_no_terminating_null(executor: WasmExecutor) -> None:
    # Reads the word right after the argc pointers: it is string bytes, not 0.
    payload = entry_module(
        "(i32.load (i32.add (local.get $argv) (i32.shl (local.get $argc) (i32.const 2))))"
    )
    word = int(executor.run(invocation(payload, {"k": "v"})))
    assert struct.pack("<i", word) == b"k\x00v\x00"


def test_no_arguments_gives_argc_zero(executor: WasmExecutor) -> None:
    assert executor.run(invocation(entry_module("(local.get $argc)"))) == "0"


def test_rejects_argument_with_nul_character(executor: WasmExecutor) -> None:
    with pytest.raises(FunctionError, match="NUL"):
        executor.run(invocation(ADD_MODULE, {"adder1": "3\x004", "adder2": "1"}))


# --- traps: Finished + Ok with WAMR's text (Q17) ---


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ("(unreachable)", "Exception: unreachable"),
        ("(i32.div_s (i32.const 1) (i32.const 0))", "Exception: integer divide by zero"),
        ("(i32.div_s (i32.const 0x80000000) (i32.const -1))", "Exception: integer overflow"),
        ("(i32.trunc_f32_s (f32.const nan))", "Exception: invalid conversion to integer"),
        ("(i32.load (i32.const 0x7ffffffc))", "Exception: out of bounds memory access"),
    ],
)
def test_trap_is_a_successful_result_with_wamr_text(
    executor: WasmExecutor, body: str, text: str
) -> None:
    assert executor.run(invocation(entry_module(body))) == text


def test_runaway_recursion_traps_with_stack_overflow_text(executor: WasmExecutor) -> None:
    payload = entry_module(
        "(call $down (i32.const 0))",
        extra="(func $down (param i32) (result i32)"
        " (call $down (i32.add (local.get 0) (i32.const 1))))",
    )
    assert executor.run(invocation(payload)) == "Exception: wasm operand stack overflow"


def test_call_to_unprovided_import_traps_like_wamr(executor: WasmExecutor) -> None:
    payload = wasmtime.wat2wasm(
        """(module (import "env" "printf" (func $printf (param i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "entrypoint") (param i32 i32) (result i32) (call $printf (i32.const 0))))"""
    )
    assert (
        executor.run(invocation(payload))
        == "Exception: failed to call unlinked import function (env, printf)"
    )


def test_unprovided_import_that_is_never_called_is_harmless(executor: WasmExecutor) -> None:
    payload = wasmtime.wat2wasm(
        """(module (import "env" "printf" (func $printf (param i32) (result i32)))
        (func (export "entrypoint") (param i32 i32) (result i32) (i32.const 9)))"""
    )
    assert executor.run(invocation(payload)) == "9"


# --- load failures: Finished + Err with a clear reason (Q22) ---


def test_rejects_module_without_entrypoint(executor: WasmExecutor) -> None:
    payload = wasmtime.wat2wasm('(module (func (export "main") (result i32) (i32.const 1)))')
    with pytest.raises(FunctionError, match='does not export a function "entrypoint"'):
        executor.run(invocation(payload))


@pytest.mark.parametrize(
    "signature",
    ["(param i32) (result i32)", "(param i32 i32)", "(param i64 i32) (result i32)"],
)
def test_rejects_entrypoint_with_wrong_signature(executor: WasmExecutor, signature: str) -> None:
    payload = wasmtime.wat2wasm(f'(module (func (export "entrypoint") {signature} unreachable))')
    with pytest.raises(FunctionError, match=r"must be a function \(i32, i32\) -> i32"):
        executor.run(invocation(payload))


def test_rejects_entrypoint_that_is_not_a_function(executor: WasmExecutor) -> None:
    payload = wasmtime.wat2wasm('(module (global (export "entrypoint") i32 (i32.const 0)))')
    with pytest.raises(FunctionError, match="must be a function"):
        executor.run(invocation(payload))


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not wasm at all",
        b"\x00asm\x02\x00\x00\x00",  # unknown version
        ADD_MODULE[:-3],  # truncated real module
        ADD_MODULE[:8] + b"\xff" + ADD_MODULE[9:],  # corrupted section id
    ],
    ids=["empty", "garbage", "bad-version", "truncated", "bad-section"],
)
def test_rejects_invalid_module_bytes(executor: WasmExecutor, payload: bytes) -> None:
    with pytest.raises(FunctionError, match="Runtime Error: invalid WebAssembly module"):
        executor.run(invocation(payload))


def test_rejects_wat_text_payload(executor: WasmExecutor) -> None:
    # wasmtime would compile text; Teaclave accepts binary modules only.
    text = b'(module (func (export "entrypoint") (param i32 i32) (result i32) i32.const 1))'
    with pytest.raises(FunctionError, match="not a binary module"):
        executor.run(invocation(text))


def test_rejects_module_with_unknown_non_function_import(executor: WasmExecutor) -> None:
    payload = wasmtime.wat2wasm(
        """(module (import "env" "table" (table 1 funcref))
        (func (export "entrypoint") (param i32 i32) (result i32) (i32.const 1)))"""
    )
    with pytest.raises(FunctionError, match="cannot instantiate"):
        executor.run(invocation(payload))


def test_trap_in_start_function_is_an_instantiation_error(executor: WasmExecutor) -> None:
    payload = wasmtime.wat2wasm(
        """(module (func $boom unreachable) (start $boom)
        (func (export "entrypoint") (param i32 i32) (result i32) (i32.const 1)))"""
    )
    with pytest.raises(FunctionError, match=r"cannot instantiate.*Exception: unreachable"):
        executor.run(invocation(payload))


def test_rejects_arguments_when_module_has_no_memory(executor: WasmExecutor) -> None:
    payload = wasmtime.wat2wasm(
        '(module (func (export "entrypoint") (param i32 i32) (result i32) (local.get 0)))'
    )
    assert executor.run(invocation(payload)) == "0"
    with pytest.raises(FunctionError, match="no linear memory"):
        executor.run(invocation(payload, {"k": "v"}))


def test_rejects_payload_over_the_size_cap() -> None:
    small = WasmExecutor(Limits(max_function_payload_bytes=len(ADD_MODULE) - 1))
    with pytest.raises(FunctionError, match="exceeds the limit"):
        small.run(invocation(ADD_MODULE, {"adder1": "1", "adder2": "2"}))
    exact = WasmExecutor(Limits(max_function_payload_bytes=len(ADD_MODULE)))
    assert exact.run(invocation(ADD_MODULE, {"adder1": "1", "adder2": "2"})) == "3"


def test_rejects_host_import_declared_with_wrong_signature(executor: WasmExecutor) -> None:
    payload = wasmtime.wat2wasm(
        """(module
        (import "env" "teaclave_read_file" (func $read (param i32 i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "entrypoint") (param i32 i32) (result i32) (i32.const 1)))"""
    )
    with pytest.raises(FunctionError, match="cannot instantiate"):
        executor.run(invocation(payload))
