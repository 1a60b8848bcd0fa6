"""wasmtime engine, compiled-module cache and run interruption for the wasm executor.

One :class:`WasmEngine` is shared by every run of a :class:`~confide.executors.wasm.WasmExecutor`:
it owns the wasmtime ``Engine`` (epoch interruption on, wasm stack capped) and a
bounded LRU cache of compiled modules keyed by the payload's SHA-256.

Interruption: every run's ``Store`` gets an epoch deadline of one tick and a
deadline callback (:class:`RunControl`). The engine epoch is only advanced when
some run must stop (cancel or time limit); every store that reaches its
deadline then asks its own ``RunControl``, which either lets it continue for
another tick or ends it with an error. So stopping one run never disturbs the
others sharing the engine.
"""

from __future__ import annotations

import ctypes
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import wasmtime
from wasmtime import _ffi as wasmtime_ffi  # deadline callback is not wrapped by wasmtime-py

from confide.config import Limits
from confide.invocation import FunctionError

__all__ = ["WASM_MAGIC", "RunControl", "WasmEngine", "Watchdog", "error_summary"]

WASM_MAGIC = b"\x00asm"

_DeadlineCallback = ctypes.CFUNCTYPE(
    ctypes.c_size_t,
    ctypes.POINTER(wasmtime_ffi.wasmtime_context_t),
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_uint64),
    ctypes.POINTER(ctypes.c_uint8),
)
_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)()
_UPDATE_DEADLINE_CONTINUE = 0
#: Text carried by the wasmtime error that ends an interrupted run.
INTERRUPT_MESSAGE = b"confide: run interrupted by the host"


class RunControl:
    """Stop switch of one run, polled by wasmtime at each epoch deadline.

    ``stop(reason)`` may be called from any thread; the next epoch tick makes
    the run fail with a wasmtime error, and ``reason`` tells the executor why.
    """

    def __init__(self, engine: WasmEngine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._reason: str | None = None
        # Keep the ctypes callback alive as long as the store that uses it.
        self._callback = _DeadlineCallback(self._on_deadline)

    @property
    def reason(self) -> str | None:
        """``"cancel"``, ``"timeout"``, ``"cap"`` (an output cap) or ``None`` while it may go on."""
        with self._lock:
            return self._reason

    def stop(self, reason: str) -> None:
        """Ask the run to stop at its next epoch check (idempotent)."""
        with self._lock:
            if self._reason is None:
                self._reason = reason
        self._engine.interrupt_all()

    def attach(self, store: wasmtime.Store) -> None:
        """Install the deadline callback on a fresh ``store``."""
        wasmtime_ffi.wasmtime_store_epoch_deadline_callback(
            store.ptr(), self._callback, None, _NO_FINALIZER
        )
        store.set_epoch_deadline(1)

    def _on_deadline(self, _ctx: Any, _data: Any, delta: Any, kind: Any) -> int:
        if self.reason is not None:
            error = wasmtime_ffi.wasmtime_error_new(INTERRUPT_MESSAGE)
            address: int = ctypes.cast(error, ctypes.c_void_p).value or 0
            return address
        delta[0] = 1
        kind[0] = _UPDATE_DEADLINE_CONTINUE
        return 0


class WasmEngine:
    """The shared wasmtime engine and its compiled-module cache."""

    def __init__(self, limits: Limits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self.clock = clock
        config = wasmtime.Config()
        config.epoch_interruption = True
        config.max_wasm_stack = limits.wasm_max_stack_bytes
        config.wasm_threads = False
        self._engine = wasmtime.Engine(config)
        self._cache: OrderedDict[bytes, tuple[wasmtime.Module, int]] = OrderedDict()
        self._cache_bytes = 0
        self._lock = threading.Lock()
        self.watchdog = Watchdog(clock)
        i32 = wasmtime.ValType.i32()
        # FuncTypes are bound to the engine that first uses them: one set per engine.
        self.host_signatures = {arity: wasmtime.FuncType([i32] * arity, [i32]) for arity in (1, 3)}

    @property
    def engine(self) -> wasmtime.Engine:
        return self._engine

    def interrupt_all(self) -> None:
        """Advance the epoch: every running store consults its ``RunControl``."""
        self._engine.increment_epoch()

    def cached_modules(self) -> int:
        with self._lock:
            return len(self._cache)

    def compile(self, unverified_payload: bytes) -> wasmtime.Module:
        """Compile (or fetch from the cache) a binary wasm module.

        Raises:
            FunctionError: the payload is too large, not a binary module, or invalid.
        """
        size = len(unverified_payload)
        if size > self.limits.max_function_payload_bytes:
            raise FunctionError(
                f"Runtime Error: WebAssembly module of {size} bytes exceeds the limit of "
                f"{self.limits.max_function_payload_bytes} bytes"
            )
        if unverified_payload[:4] != WASM_MAGIC:
            # wasmtime would also accept WAT text; Teaclave takes binary modules only.
            raise FunctionError(
                "Runtime Error: invalid WebAssembly module: not a binary module (bad magic)"
            )
        key = hashlib.sha256(unverified_payload).digest()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit[0]
        try:
            module = wasmtime.Module(self._engine, unverified_payload)
        except wasmtime.WasmtimeError as e:
            raise FunctionError(
                f"Runtime Error: invalid WebAssembly module: {error_summary(e)}"
            ) from e
        self._remember(key, module, size)
        return module

    def _remember(self, key: bytes, module: wasmtime.Module, size: int) -> None:
        if size > self.limits.wasm_module_cache_bytes or self.limits.wasm_module_cache_entries <= 0:
            return
        with self._lock:
            if key in self._cache:
                return
            self._cache[key] = (module, size)
            self._cache_bytes += size
            while (
                len(self._cache) > self.limits.wasm_module_cache_entries
                or self._cache_bytes > self.limits.wasm_module_cache_bytes
            ):
                _, (_, evicted_size) = self._cache.popitem(last=False)
                self._cache_bytes -= evicted_size


def error_summary(error: Exception) -> str:
    """The most specific line of a wasmtime error ("Caused by" chain, last entry)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    cause = lines[-1]
    # Chained causes are numbered ("1: wasm trap: ..."): drop the index.
    head, sep, rest = cause.partition(": ")
    if sep and head.isdigit():
        cause = rest
    return cause


class Watchdog:
    """One thread per engine that stops runs on cancel or at their deadline.

    Runs register with :meth:`watch` and leave with :meth:`unwatch`; while any
    run is registered the thread polls every ``poll_seconds`` (the cancel
    latency), otherwise it sleeps. A shared thread keeps the per-task cost to a
    dictionary insert instead of a thread start and join.
    """

    def __init__(self, clock: Callable[[], float], poll_seconds: float = 0.01) -> None:
        self._clock = clock
        self._poll = poll_seconds
        self._cond = threading.Condition()
        self._runs: dict[int, tuple[RunControl, threading.Event, float]] = {}
        self._next_token = 0
        self._thread: threading.Thread | None = None

    def watch(self, control: RunControl, cancel: threading.Event, deadline: float) -> int:
        """Watch a run until :meth:`unwatch`; ``deadline`` is on ``clock``."""
        with self._cond:
            self._next_token += 1
            token = self._next_token
            self._runs[token] = (control, cancel, deadline)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="wasm-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify()
            return token

    def unwatch(self, token: int) -> None:
        with self._cond:
            self._runs.pop(token, None)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._runs:
                    self._cond.wait()
                runs = list(self._runs.items())
            now = self._clock()
            for token, (control, cancel, deadline) in runs:
                reason = "cancel" if cancel.is_set() else "timeout" if now >= deadline else None
                if reason is not None:
                    self.unwatch(token)
                    control.stop(reason)
            time.sleep(self._poll)
