"""WebAssembly executor: Teaclave's WAMR contract on wasmtime (spec §5.8).

The payload is a binary wasm32 module exporting ``entrypoint(argc, argv) -> i32``.
``argv`` holds ``argc`` 32-bit pointers to NUL-terminated strings
``key, value, key, value, ...`` sorted by key (spec §5.2). Files are reached
through five ``env`` imports (see :mod:`confide.executors._wasm_host`).

Outcomes (spec §5.3, Q17, Q22):

* normal return -> the decimal text of the i32 (Finished + Ok);
* a trap -> WAMR's text, e.g. ``Exception: unreachable`` (Finished + Ok);
* the module does not load, instantiate, or export a fitting ``entrypoint``
  -> :class:`FunctionError` with a clear reason (Finished + Err);
* the platform's time limit, or a trap with linear memory at the platform's
  cap -> :class:`FunctionError` ``Runtime Error: time limit exceeded`` /
  ``Runtime Error: memory limit exceeded`` (Finished + Err): the function did
  not fail, the platform stopped it;
* a write past an output cap of the (capped) TaskIO -> that write is ``-1``,
  the run is stopped at once and the :class:`CapExceeded` is raised
  (Finished + Err naming the cap);
* ``invocation.cancel`` set -> :class:`CancelledError` within ~10 ms.

Where argv goes: modules are built ``-nostdlib`` and need not export an
allocator, so the host grows linear memory by enough whole pages and writes the
pointer array and the strings into the new pages, above everything the module
owns at that point. An allocator in the module that later grows memory gets
pages beyond the argv area. (Teaclave puts them in WAMR's instance heap, also
past the module's data; modules must not assume an address either way.)
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Mapping

import wasmtime

from confide.config import Limits
from confide.executor_registry import WAMR
from confide.executors._args import flatten_arguments
from confide.executors._wasm_engine import RunControl, WasmEngine, error_summary
from confide.executors._wasm_host import HostImports
from confide.executors._wasm_traps import trap_text, unlinked_import_text
from confide.invocation import CancelledError, FunctionError, Invocation

__all__ = ["ENTRYPOINT", "WasmExecutor"]

#: The export every Teaclave wasm function must provide.
ENTRYPOINT = "entrypoint"

_PAGE = 65536
_I32 = wasmtime.ValType.i32()
_MAX_TABLE_ELEMENTS = 1_000_000


class WasmExecutor:
    """Runs Teaclave ``wamr`` functions in wasmtime.

    Args:
        limits: caps (stack, memory, time, cache); ``Limits()`` by default.
        clock: monotonic clock in seconds, for the run's time limit.
    """

    name = WAMR.executor

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = limits if limits is not None else Limits()
        self._clock = clock
        self._engine = WasmEngine(self._limits, clock)

    @property
    def engine(self) -> WasmEngine:
        """The shared engine (exposed for cache inspection and benchmarks)."""
        return self._engine

    def run(self, invocation: Invocation) -> str:
        """Run ``entrypoint`` and return its result string (see module doc).

        Raises:
            FunctionError: load/instantiation failure, no fitting ``entrypoint``,
                time or memory limit, or a host-side failure.
            CapExceeded: a write went past an output cap.
            CancelledError: ``invocation.cancel`` was set.
        """
        if invocation.cancel.is_set():
            raise CancelledError(invocation.task_id)
        module = self._engine.compile(invocation.function.payload)
        _check_entrypoint(module)
        argv = _encode_arguments(flatten_arguments(invocation.arguments))

        store = wasmtime.Store(self._engine.engine)
        store.set_limits(
            memory_size=self._limits.wasm_max_memory_bytes,
            table_elements=_MAX_TABLE_ELEMENTS,
            instances=1,
            memories=1,
        )
        control = RunControl(self._engine)
        control.attach(store)
        host = HostImports(
            invocation.io,
            max_name_bytes=self._limits.max_id_chars * 4,  # UTF-8 of max_id_chars chars
            max_io_chunk_bytes=self._limits.wasm_max_io_chunk_bytes,
            on_cap=lambda: control.stop("cap"),
        )
        token = self._engine.watchdog.watch(
            control,
            invocation.cancel,
            self._clock() + self._limits.wasm_max_run_seconds,
        )
        try:
            text = self._run_in_store(store, module, host, control, argv)
        except FunctionError as e:
            if host.cap_exceeded is not None:  # stopped for the cap: that is the reason
                raise host.cap_exceeded from e
            raise
        finally:
            self._engine.watchdog.unwatch(token)
            host.close_all()
        if host.cap_exceeded is not None:
            raise host.cap_exceeded  # whatever the module made of the -1 it was given
        if host.internal_error is not None:
            # Storage failed under the module (it saw -1): outputs may be incomplete.
            raise FunctionError("Runtime Error: host file API failed") from host.internal_error
        return text

    def _run_in_store(
        self,
        store: wasmtime.Store,
        module: wasmtime.Module,
        host: HostImports,
        control: RunControl,
        argv: list[bytes],
    ) -> str:
        linker = wasmtime.Linker(self._engine.engine)
        host.define(linker, self._engine.host_signatures)
        try:
            linker.define_unknown_imports_as_traps(module)
            instance = linker.instantiate(store, module)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as e:
            self._raise_if_stopped(control, e)
            reason = trap_text(e) if isinstance(e, wasmtime.Trap) else error_summary(e)
            raise FunctionError(
                f"Runtime Error: cannot instantiate WebAssembly module: {reason}"
            ) from e
        exports = instance.exports(store)
        entry = exports[ENTRYPOINT]
        if not isinstance(entry, wasmtime.Func):  # checked on the module already
            raise FunctionError(f'Runtime Error: "{ENTRYPOINT}" is not a function')
        memory = _find_memory(exports)
        host.memory = memory
        argv_ptr = self._write_argv(store, memory, argv)
        try:
            result = entry(store, len(argv), argv_ptr)
        except wasmtime.Trap as e:
            self._raise_if_stopped(control, e)
            self._raise_if_memory_cap(store, memory, e)
            text = trap_text(e)
        except wasmtime.WasmtimeError as e:
            self._raise_if_stopped(control, e)
            unlinked = unlinked_import_text(e)
            if unlinked is None:
                raise FunctionError(f"Runtime Error: {error_summary(e)}") from e
            text = unlinked
        else:
            text = str(int(result))
        return text

    def _raise_if_stopped(self, control: RunControl, error: Exception) -> None:
        reason = control.reason
        if reason == "cancel":
            raise CancelledError("cancelled by the user") from error
        if reason == "timeout":
            raise FunctionError(
                f"Runtime Error: time limit exceeded ({self._limits.wasm_max_run_seconds:g} s)"
            ) from error

    def _raise_if_memory_cap(
        self, store: wasmtime.Store, memory: wasmtime.Memory | None, error: Exception
    ) -> None:
        # A refused memory.grow is -1 to the module (as in WAMR); most allocators
        # then abort with a trap. A trap with less than one page of headroom left
        # is attributed to the platform's cap rather than to the function.
        if memory is None:
            return
        cap = self._limits.wasm_max_memory_bytes
        if memory.data_len(store) + _PAGE > cap:
            raise FunctionError(f"Runtime Error: memory limit exceeded ({cap} bytes)") from error

    def _write_argv(
        self, store: wasmtime.Store, memory: wasmtime.Memory | None, argv: list[bytes]
    ) -> int:
        """Place the pointer array and strings in fresh pages; return the array's address."""
        if not argv:
            return 0
        if memory is None:
            raise FunctionError(
                "Runtime Error: WebAssembly module exports no linear memory to receive arguments"
            )
        table_bytes = 4 * len(argv)
        total = table_bytes + sum(len(s) + 1 for s in argv)
        pages = -(-total // _PAGE)
        try:
            old_pages = memory.grow(store, pages)
        except wasmtime.WasmtimeError as e:
            raise FunctionError(
                f"Runtime Error: no room for arguments: linear memory cannot grow by {total}"
                " bytes (module maximum or memory limit)"
            ) from e
        base = old_pages * _PAGE
        pointers: list[int] = []
        blob = bytearray()
        for value in argv:
            pointers.append(base + table_bytes + len(blob))
            blob += value + b"\x00"
        memory.write(store, struct.pack(f"<{len(pointers)}I", *pointers) + blob, base)
        return base


def _check_entrypoint(module: wasmtime.Module) -> None:
    for export in module.exports:
        if export.name != ENTRYPOINT:
            continue
        ty = export.type
        if isinstance(ty, wasmtime.FuncType) and ty.params == [_I32, _I32] and ty.results == [_I32]:
            return
        raise FunctionError(
            f'Runtime Error: export "{ENTRYPOINT}" must be a function (i32, i32) -> i32'
        )
    raise FunctionError(
        f'Runtime Error: WebAssembly module does not export a function "{ENTRYPOINT}"'
    )


def _find_memory(exports: Mapping[str, object]) -> wasmtime.Memory | None:
    """The exported memory (``memory`` by preference: clang's and rustc's name)."""
    preferred = exports.get("memory")
    if isinstance(preferred, wasmtime.Memory):
        return preferred
    for item in exports.values():
        if isinstance(item, wasmtime.Memory):
            return item
    return None


def _encode_arguments(flat: list[str]) -> list[bytes]:
    encoded = [text.encode("utf-8") for text in flat]
    if any(b"\x00" in value for value in encoded):
        raise FunctionError("Runtime Error: an argument contains a NUL character")
    return encoded
