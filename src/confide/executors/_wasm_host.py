"""The five ``env`` imports a Teaclave wasm module may call (spec §5.4, §5.8).

Every pointer and length coming from the module is untrusted: it is checked
against the current size of linear memory before any byte is touched, names
are NUL-terminated within a length cap, and every failure is the value ``-1``
for the module, never an exception crossing into wasmtime (wasmtime-py keeps
the last host exception in a process-global, which concurrent runs would race
on). A host-side failure that is not the module's fault (storage ``OSError``,
a bug) is recorded in ``HostImports.internal_error`` and turned into a task
error after the run. A write past an output cap (:class:`CapExceeded`) is
recorded in ``HostImports.cap_exceeded``, answered ``-1`` and the run is asked
to stop (``on_cap``): the task then fails with the cap's reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import wasmtime

from confide.executors._caps import CapExceeded
from confide.invocation import ExecutorError, TaskIO

__all__ = ["MAX_HANDLE_SEQUENCE", "WRITE_HANDLE_BIT", "HostImports"]

#: Handles come from one sequence 1..1023 per task and are never reused.
MAX_HANDLE_SEQUENCE = 1023
#: Write handles are ``n`` with bit 30 set.
WRITE_HANDLE_BIT = 0x4000_0000

_FAIL = -1
_U32_MASK = 0xFFFF_FFFF

_ONE_ARG = 1
_THREE_ARGS = 3


class _BadAccess(Exception):
    """A pointer, length or name from the module is unusable (-> -1)."""


@dataclass
class _OpenFile:
    stream: BinaryIO
    writable: bool


class HostImports:
    """Per-run state behind the five imports: memory view, handle table, TaskIO."""

    def __init__(
        self,
        io: TaskIO,
        *,
        max_name_bytes: int,
        max_io_chunk_bytes: int,
        on_cap: Callable[[], None] | None = None,
    ) -> None:
        self._io = io
        self._max_name_bytes = max_name_bytes
        self._max_chunk = max_io_chunk_bytes
        self._on_cap = on_cap
        self._files: dict[int, _OpenFile] = {}
        self._sequence = 0
        #: Set by the executor once the instance exists; ``None`` -> every access fails.
        self.memory: wasmtime.Memory | None = None
        #: First unexpected host-side error (a bug or a broken TaskIO), if any.
        self.internal_error: Exception | None = None
        #: First write refused by an output cap, if any (the task fails with it).
        self.cap_exceeded: CapExceeded | None = None

    def define(self, linker: wasmtime.Linker, signatures: dict[int, wasmtime.FuncType]) -> None:
        """Define the five imports under module ``env`` in ``linker``.

        ``signatures`` maps an arity to ``(i32 * arity) -> i32``, built for the
        linker's engine.
        """
        handlers: dict[str, tuple[int, Callable[..., int]]] = {
            "teaclave_open_input": (_ONE_ARG, self._open_input),
            "teaclave_create_output": (_ONE_ARG, self._create_output),
            "teaclave_read_file": (_THREE_ARGS, self._read_file),
            "teaclave_write_file": (_THREE_ARGS, self._write_file),
            "teaclave_close_file": (_ONE_ARG, self._close_file),
        }
        for name, (arity, handler) in handlers.items():
            linker.define_func("env", name, signatures[arity], handler, access_caller=True)

    def close_all(self) -> None:
        """Close every file the module left open (outputs must be complete)."""
        for handle in sorted(self._files):
            entry = self._files.pop(handle)
            try:
                entry.stream.close()
            except OSError as e:
                self._record(e)

    # --- the imports (signatures fixed by spec §5.8) ---

    def _open_input(self, caller: wasmtime.Caller, name_ptr: int) -> int:
        return self._guard(lambda: self._open(caller, name_ptr, writable=False))

    def _create_output(self, caller: wasmtime.Caller, name_ptr: int) -> int:
        return self._guard(lambda: self._open(caller, name_ptr, writable=True))

    def _read_file(self, caller: wasmtime.Caller, fd: int, buf_ptr: int, length: int) -> int:
        return self._guard(lambda: self._read(caller, fd, buf_ptr, length))

    def _write_file(self, caller: wasmtime.Caller, fd: int, buf_ptr: int, length: int) -> int:
        return self._guard(lambda: self._write(caller, fd, buf_ptr, length))

    def _close_file(self, caller: wasmtime.Caller, fd: int) -> int:
        return self._guard(lambda: self._close(fd))

    # --- implementation ---

    def _guard(self, action: Callable[[], int]) -> int:
        try:
            return action()
        except CapExceeded as e:
            # Not the module's to handle: -1 now, the run is stopped, the task fails.
            if self.cap_exceeded is None:
                self.cap_exceeded = e
                if self._on_cap is not None:
                    self._on_cap()
            return _FAIL
        except (_BadAccess, ExecutorError, ValueError, wasmtime.WasmtimeError):
            # The module's mistake or a refused name / corrupted input: spec says -1.
            return _FAIL
        except OSError as e:
            # Storage failed, not the module: -1 now, and the task fails afterwards.
            self._record(e)
            return _FAIL
        except Exception as e:  # noqa: BLE001 - nothing may propagate into wasmtime
            self._record(e)
            return _FAIL

    def _record(self, error: Exception) -> None:
        if self.internal_error is None:
            self.internal_error = error

    def _open(self, caller: wasmtime.Caller, name_ptr: int, *, writable: bool) -> int:
        name = self._read_name(caller, name_ptr)
        if self._sequence >= MAX_HANDLE_SEQUENCE:
            raise _BadAccess("handle sequence exhausted")
        stream = self._io.create_output(name) if writable else self._io.open_input(name)
        self._sequence += 1
        handle = self._sequence | (WRITE_HANDLE_BIT if writable else 0)
        self._files[handle] = _OpenFile(stream, writable)
        return handle

    def _read(self, caller: wasmtime.Caller, fd: int, buf_ptr: int, length: int) -> int:
        entry = self._file(fd, writable=False)
        start = self._checked_range(caller, buf_ptr, length)
        data = entry.stream.read(min(length, self._max_chunk))
        if not data:
            return 0
        self._mem(caller).write(caller, data, start)
        return len(data)

    def _write(self, caller: wasmtime.Caller, fd: int, buf_ptr: int, length: int) -> int:
        entry = self._file(fd, writable=True)
        start = self._checked_range(caller, buf_ptr, length)
        count = min(length, self._max_chunk)
        if count == 0:
            return 0
        data = bytes(self._mem(caller).read(caller, start, start + count))
        written = entry.stream.write(data)
        return written if isinstance(written, int) else count

    def _close(self, fd: int) -> int:
        entry = self._files.pop(fd, None)
        if entry is None:
            raise _BadAccess("unknown or closed handle")
        entry.stream.close()
        return 0

    def _file(self, fd: int, *, writable: bool) -> _OpenFile:
        entry = self._files.get(fd)
        if entry is None or entry.writable != writable:
            raise _BadAccess("unknown handle or wrong direction")
        return entry

    def _mem(self, caller: wasmtime.Caller) -> wasmtime.Memory:
        if self.memory is None:
            raise _BadAccess("module exports no memory")
        return self.memory

    def _checked_range(self, caller: wasmtime.Caller, ptr: int, length: int) -> int:
        """Offset of ``[ptr, ptr + length)`` if it lies inside linear memory."""
        if length < 0:
            raise _BadAccess("negative length")
        start = ptr & _U32_MASK  # i32 arrives signed; a wasm32 address is unsigned
        if start + length > self._mem(caller).data_len(caller):
            raise _BadAccess("buffer outside linear memory")
        return start

    def _read_name(self, caller: wasmtime.Caller, ptr: int) -> str:
        memory = self._mem(caller)
        start = ptr & _U32_MASK
        end = min(memory.data_len(caller), start + self._max_name_bytes + 1)
        if start >= end:
            raise _BadAccess("name outside linear memory")
        raw = memory.read(caller, start, end)
        nul = raw.find(b"\x00")
        if nul < 0:
            raise _BadAccess("name not NUL-terminated within the cap")
        return bytes(raw[:nul]).decode("utf-8")  # UnicodeDecodeError is a ValueError
