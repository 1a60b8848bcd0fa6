"""What a builtin function sees while it runs: arguments, files, limits, log, cancel."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confide.config import Limits
from confide.invocation import CancelledError, FunctionError, TaskIO

__all__ = ["FunctionContext", "LogSink"]

LogSink = Callable[[str], None]


@dataclass
class FunctionContext:
    """The runtime handed to one builtin invocation.

    Attributes:
        arguments: the final argument object (spec §5.1).
        io: plaintext file access by data name.
        limits: caps on untrusted sizes.
        module: the Teaclave module name used in log lines (``teaclave_function::<module>``).
        log_sink: receives formatted log lines when ``save_log`` is on, else ``None``.
        cancel: set by the worker to stop the run.
    """

    arguments: Mapping[str, Any]
    io: TaskIO
    limits: Limits = field(default_factory=Limits)
    module: str = ""
    log_sink: LogSink | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def read_input(self, name: str) -> bytes:
        """Read a whole assigned input, at most ``limits.builtin_max_input_bytes``.

        Raises:
            InvalidInputName: ``name`` is not assigned.
            CorruptedInput: integrity check failed at open.
            FunctionError: the input exceeds the cap.
        """
        cap = self.limits.builtin_max_input_bytes
        chunks: list[bytes] = []
        size = 0
        with self.io.open_input(name) as stream:
            while size <= cap:
                chunk = stream.read(min(cap + 1 - size, 1 << 20))
                if not chunk:
                    break
                chunks.append(bytes(chunk))
                size += len(chunk)
        if size > cap:
            raise FunctionError(f"Input file too large: {name} exceeds {cap} bytes")
        return b"".join(chunks)

    def write_output(self, name: str, data: bytes) -> None:
        """Create (truncate) an assigned output and write ``data`` to it.

        Raises:
            InvalidOutputName: ``name`` is not assigned.
        """
        with self.io.create_output(name) as stream:
            stream.write(data)

    def log(self, message: str, level: str = "INFO") -> None:
        """Emit one function log line in Teaclave's ``[LEVEL module] message`` form."""
        if self.log_sink is not None:
            self.log_sink(f"[{level} teaclave_function::{self.module}] {message}")

    def debug(self, message: str) -> None:
        """Emit a DEBUG line (Teaclave's builtins log their progress at DEBUG)."""
        self.log(message, level="DEBUG")

    def check_cancel(self) -> None:
        """Raise :class:`CancelledError` if the worker asked to stop.

        Raises:
            CancelledError: ``cancel`` is set.
        """
        if self.cancel.is_set():
            raise CancelledError("invocation cancelled")
