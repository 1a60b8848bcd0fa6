"""Trap texts in WAMR's wording (spec §5.8: a trap is a *successful* result).

Teaclave returns ``wasm_runtime_get_exception()``, i.e. ``"Exception: "`` followed
by WAMR's message for the trap. wasmtime reports the same traps with its own
codes; this module renders them the WAMR way so a client sees the same text.
"""

from __future__ import annotations

import re

import wasmtime

from confide.executors._wasm_engine import error_summary

__all__ = ["trap_text", "unlinked_import_text"]

_PREFIX = "Exception: "

# wasmtime trap code -> WAMR interpreter message.
_WAMR_MESSAGES: dict[wasmtime.TrapCode, str] = {
    wasmtime.TrapCode.UNREACHABLE: "unreachable",
    wasmtime.TrapCode.MEMORY_OUT_OF_BOUNDS: "out of bounds memory access",
    wasmtime.TrapCode.INTEGER_OVERFLOW: "integer overflow",
    wasmtime.TrapCode.INTEGER_DIVISION_BY_ZERO: "integer divide by zero",
    wasmtime.TrapCode.BAD_CONVERSION_TO_INTEGER: "invalid conversion to integer",
    wasmtime.TrapCode.BAD_SIGNATURE: "indirect call type mismatch",
    wasmtime.TrapCode.INDIRECT_CALL_TO_NULL: "uninitialized element",
    wasmtime.TrapCode.TABLE_OUT_OF_BOUNDS: "undefined element",
    # WAMR's interpreter (Teaclave's build) overflows its operand stack first.
    wasmtime.TrapCode.STACK_OVERFLOW: "wasm operand stack overflow",
    wasmtime.TrapCode.HEAP_MISALIGNED: "unaligned atomic",
}

_UNKNOWN_IMPORT = re.compile(r"unknown import: `([^`:]*)::([^`]*)` has not been defined")


def trap_text(trap: wasmtime.Trap) -> str:
    """``"Exception: <WAMR message>"`` for a wasmtime trap."""
    code = trap.trap_code
    message = _WAMR_MESSAGES.get(code) if code is not None else None
    if message is None:
        message = error_summary(trap).removeprefix("wasm trap: ")
    return _PREFIX + message


def unlinked_import_text(error: wasmtime.WasmtimeError) -> str | None:
    """WAMR's text for a call to an import the host does not provide, else ``None``.

    WAMR instantiates a module with unresolved function imports and traps only
    when one is called; wasmtime's ``define_unknown_imports_as_traps`` does the
    same but reports it as an error with its own wording.
    """
    match = _UNKNOWN_IMPORT.search(str(error))
    if match is None:
        return None
    return f"{_PREFIX}failed to call unlinked import function ({match[1]}, {match[2]})"
