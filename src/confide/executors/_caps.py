"""Caps on what one task makes, the same for every executor (``Limits``).

The worker hands every executor a capped view of the task
(:func:`apply_caps`): each output stream counts its bytes against
``max_output_file_bytes`` and ``max_output_bytes`` *before* passing them on,
and the log sink counts lines and bytes against ``max_log_lines`` and
``max_log_bytes``. A write or line past a cap raises :class:`CapExceeded`
(a :class:`~confide.executors.FunctionError`, so the task ends *Finished +
Err*) and nothing of it reaches the sink: the bytes held never exceed the cap.
The worker's staging area (``confide.execution``) raises the same error for
``max_input_bytes`` and ``max_task_area_bytes``.

Executors only have to let the error through: the Python sandbox turns it into
a ``SandboxFailure`` with the same reason, the wasm host stops the module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from types import TracebackType
from typing import BinaryIO, Self, cast

from .._units import binary_size
from ..config import Limits
from ..invocation import FunctionError, Invocation, TaskIO

__all__ = [
    "CapExceeded",
    "CappedOutput",
    "CappedTaskIO",
    "LogCap",
    "OutputBudget",
    "WrappedWriter",
    "apply_caps",
    "format_cap",
]

# Limits field -> (what the cap is called in a reason, cause tag, unit).
_CAPS: dict[str, tuple[str, str, str]] = {
    "max_input_bytes": ("staged input cap", "input", "bytes"),
    "max_output_file_bytes": ("per-file output cap", "output", "bytes"),
    "max_output_bytes": ("per-task output cap", "output", "bytes"),
    "max_log_lines": ("log cap", "log", "lines"),
    "max_log_bytes": ("log cap", "log", "bytes"),
    "max_task_area_bytes": ("private area cap", "area", "bytes"),
}


def format_cap(value: int, unit: str = "bytes") -> str:
    """A cap as it reads before a noun: ``268435456`` -> ``"256 MiB"``, a size
    that is no whole unit -> ``"1000-byte"``, 10 lines -> ``"10-line"``."""
    if unit == "bytes" and (size := binary_size(value)) is not None:
        return size
    return f"{value}-{unit.removesuffix('s')}"


class CapExceeded(FunctionError):
    """A task went past one of the caps on what it makes.

    Attributes:
        field: the ``Limits`` field (``max_output_file_bytes``, ...), named in
            ``reason`` as ``limits.<field>`` so an operator knows what to raise.
        limit: the cap's value.
        cause: ``output``, ``input``, ``log`` or ``area``.
    """

    def __init__(self, subject: str, field: str, limit: int, *, plural: bool = False) -> None:
        title, cause, unit = _CAPS[field]
        verb = "exceed" if plural else "exceeds"
        super().__init__(
            f"Runtime Error: {subject} {verb} the {format_cap(limit, unit)} {title} "
            f"(limits.{field})"
        )
        self.field = field
        self.limit = limit
        self.cause = cause


class OutputBudget:
    """The output caps of one task: per file and in total.

    Re-creating an output starts its file count afresh but refunds nothing of
    the total, so a loop of re-creations still runs out.
    """

    def __init__(self, limits: Limits) -> None:
        self._max_file = limits.max_output_file_bytes
        self._max_total = limits.max_output_bytes
        self._total = 0

    @property
    def total(self) -> int:
        """Bytes accepted so far, over every output."""
        return self._total

    def charge(self, name: str, file_size: int, n: int) -> None:
        """Account ``n`` more bytes for output ``name`` that holds ``file_size`` now.

        Raises:
            CapExceeded: the file or the task would go past its cap (nothing is
                charged then).
        """
        if file_size + n > self._max_file:
            raise CapExceeded(f"output {name!r}", "max_output_file_bytes", self._max_file)
        if self._total + n > self._max_total:
            raise CapExceeded("outputs", "max_output_bytes", self._max_total, plural=True)
        self._total += n


class WrappedWriter:
    """A binary write stream around ``inner``; subclasses decide what a write costs.

    Supports what the worker's writers use (``write``, ``flush``, ``close``, the
    context manager); ``write`` is the subclass's.
    """

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner

    @property
    def closed(self) -> bool:
        return self._inner.closed

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        self._inner.flush()

    def fileno(self) -> int:
        """The inner stream's descriptor (raises as it does when it has none)."""
        return self._inner.fileno()

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class CappedOutput(WrappedWriter):
    """A write-only output stream that checks the budget before each write."""

    def __init__(self, inner: BinaryIO, name: str, budget: OutputBudget) -> None:
        super().__init__(inner)
        self._name = name
        self._budget = budget
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Write all of ``data`` or, past a cap, none of it.

        Raises:
            CapExceeded: ``data`` would take the file or the task past its cap.
        """
        n = len(data) if type(data) is bytes else memoryview(data).nbytes
        self._budget.charge(self._name, self._size, n)
        self._size += n
        self._inner.write(data)
        return n


class CappedTaskIO:
    """A :class:`~confide.executors.TaskIO` whose outputs are capped streams."""

    def __init__(self, inner: TaskIO, limits: Limits) -> None:
        self._inner = inner
        self.budget = OutputBudget(limits)

    def input_names(self) -> Collection[str]:
        return self._inner.input_names()

    def output_names(self) -> Collection[str]:
        return self._inner.output_names()

    def open_input(self, name: str) -> BinaryIO:
        return self._inner.open_input(name)

    def create_output(self, name: str) -> BinaryIO:
        # Write-only: all an executor does with an output (write, flush, close).
        return cast(BinaryIO, CappedOutput(self._inner.create_output(name), name, self.budget))


class LogCap:
    """A log sink that forwards lines while they fit ``max_log_lines`` and
    ``max_log_bytes`` (UTF-8 of each line) and raises at the first that does not."""

    def __init__(self, sink: Callable[[str], None], limits: Limits) -> None:
        self._sink = sink
        self._max_lines = limits.max_log_lines
        self._max_bytes = limits.max_log_bytes
        self._lines = 0
        self._bytes = 0

    def __call__(self, line: str) -> None:
        """Forward ``line``.

        Raises:
            CapExceeded: the line would take the log past a cap (not forwarded).
        """
        size = len(line.encode("utf-8", "surrogatepass"))
        if self._lines + 1 > self._max_lines:
            raise CapExceeded("log", "max_log_lines", self._max_lines)
        if self._bytes + size > self._max_bytes:
            raise CapExceeded("log", "max_log_bytes", self._max_bytes)
        self._lines += 1
        self._bytes += size
        self._sink(line)


def apply_caps(invocation: Invocation, limits: Limits) -> Invocation:
    """The same invocation with capped outputs and a capped log sink."""
    log = invocation.log
    return dataclasses.replace(
        invocation,
        io=CappedTaskIO(invocation.io, limits),
        log=LogCap(log, limits) if log is not None else None,
    )
