"""Where validated frames go: output files and captured log lines, under caps."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import BinaryIO

from ._errors import ProtocolViolation, SandboxFailure
from ._protocol import Create, LogLine, valid_handle

__all__ = ["LogRouter", "OutputRouter"]


class OutputRouter:
    """Turns CREATE/WRITE/CLOSE frames into writes on the task's output streams.

    Args:
        create: opens (truncates) an assigned output by data name.
        names: the assigned output names; any other name is a violation (the
            harness refuses unknown names itself, so only a forged frame has one).
        max_output: cap on one output file's size.
        max_total: cap on all bytes written in the run (re-creating a file
            does not give back budget).
    """

    def __init__(
        self,
        create: Callable[[str], BinaryIO],
        names: Collection[str],
        *,
        max_output: int,
        max_total: int,
    ) -> None:
        self._create = create
        self._names = frozenset(names)
        self._max_output = max_output
        self._max_total = max_total
        self._total = 0
        self._open: dict[int, tuple[str, BinaryIO]] = {}
        self._sizes: dict[int, int] = {}
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
        self._sizes[frame.handle] = 0

    def on_write(self, handle: int, data: bytes) -> None:
        entry = self._open.get(handle)
        if entry is None or not valid_handle(handle, write=True):
            raise ProtocolViolation("write to a handle that is not open")
        size = self._sizes[handle] + len(data)
        self._total += len(data)
        if size > self._max_output or self._total > self._max_total:
            raise SandboxFailure("output", "Runtime Error: output size limit exceeded")
        self._sizes[handle] = size
        entry[1].write(data)

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
    """Formats captured lines as ``[LEVEL module] text`` within the caps.

    Lines past ``max_lines`` or ``max_bytes`` are dropped (never an error: a
    chatty function still finishes).
    """

    def __init__(
        self,
        log: Callable[[str], None] | None,
        *,
        max_lines: int,
        max_bytes: int,
        max_line_chars: int,
    ) -> None:
        self._log = log
        self._lines_left = max_lines
        self._bytes_left = max_bytes
        self._max_line_chars = max_line_chars

    def on_line(self, line: LogLine) -> None:
        if self._log is None:
            return
        text = f"[{line.level} {line.module}] {line.text[: self._max_line_chars]}"
        size = len(text.encode("utf-8"))
        if self._lines_left <= 0 or size > self._bytes_left:
            self._lines_left = 0
            return
        self._lines_left -= 1
        self._bytes_left -= size
        self._log(text)
