"""Where validated frames go: output files and captured log lines.

The caps on both (``max_output_*``, ``max_log_*``) are the task's, enforced by
the capped streams and log sink the worker hands every executor
(:func:`~confide.executors.apply_caps`); a :class:`CapExceeded` from them ends
the run as a ``SandboxFailure`` with the same reason.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import BinaryIO

from .._caps import CapExceeded
from ._errors import ProtocolViolation, SandboxFailure
from ._protocol import Create, LogLine, valid_handle

__all__ = ["LogRouter", "OutputRouter"]


def _failure(error: CapExceeded) -> SandboxFailure:
    return SandboxFailure(error.cause, error.reason)


class OutputRouter:
    """Turns CREATE/WRITE/CLOSE frames into writes on the task's output streams.

    Args:
        create: opens (truncates) an assigned output by data name; its streams
            raise :class:`CapExceeded` past an output cap.
        names: the assigned output names; any other name is a violation (the
            harness refuses unknown names itself, so only a forged frame has one).
    """

    def __init__(self, create: Callable[[str], BinaryIO], names: Collection[str]) -> None:
        self._create = create
        self._names = frozenset(names)
        self._open: dict[int, tuple[str, BinaryIO]] = {}
        self._used: set[int] = set()

    def on_create(self, frame: Create) -> None:
        if frame.name not in self._names:
            raise ProtocolViolation("create of an unassigned output")
        if frame.handle in self._used:
            raise ProtocolViolation("output handle reused")
        for handle, (name, _) in list(self._open.items()):
            if name == frame.name:
                self.on_close(handle)
        self._used.add(frame.handle)
        self._open[frame.handle] = (frame.name, self._create(frame.name))

    def on_write(self, handle: int, data: bytes) -> None:
        entry = self._open.get(handle)
        if entry is None or not valid_handle(handle, write=True):
            raise ProtocolViolation("write to a handle that is not open")
        try:
            entry[1].write(data)
        except CapExceeded as e:
            raise _failure(e) from e

    def on_close(self, handle: int) -> None:
        entry = self._open.pop(handle, None)
        if entry is None:
            raise ProtocolViolation("close of a handle that is not open")
        entry[1].close()

    def close_all(self) -> None:
        """Close every stream still open (normal end, error or kill)."""
        while self._open:
            _, (_, stream) = self._open.popitem()
            stream.close()


class LogRouter:
    """Formats captured lines as ``[LEVEL module] text`` (text cut at
    ``max_line_chars``) for the task's log sink, which raises
    :class:`CapExceeded` past ``max_log_lines`` / ``max_log_bytes``."""

    def __init__(self, log: Callable[[str], None] | None, *, max_line_chars: int) -> None:
        self._log = log
        self._max_line_chars = max_line_chars

    def on_line(self, line: LogLine) -> None:
        if self._log is None:
            return
        try:
            self._log(f"[{line.level} {line.module}] {line.text[: self._max_line_chars]}")
        except CapExceeded as e:
            raise _failure(e) from e
