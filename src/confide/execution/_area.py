"""The size of one task's private area, counted while it is written.

Everything a task puts in the worker's memory-backed staging area (received
inputs, their plaintext, outputs, each output's sealed copy) is charged to one
:class:`AreaBudget` (``Limits.max_task_area_bytes``) *before* it is written;
files that are removed give their bytes back. A :class:`MeteredFile` charges
the growth of a file, so seeking back and rewriting (the protected-file
writer, a retried download) costs nothing twice.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from ..executors import CapExceeded, WrappedWriter

__all__ = ["AreaBudget", "MeteredFile", "remove_file"]

_FIELD = "max_task_area_bytes"


class AreaBudget:
    """Bytes one task holds in its private area, at most ``cap``."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._used = 0
        self._peak = 0

    @property
    def used(self) -> int:
        return self._used

    @property
    def peak(self) -> int:
        """The most bytes held at once so far (never above ``cap``)."""
        return self._peak

    @property
    def remaining(self) -> int:
        return self.cap - self._used

    def charge(self, n: int) -> None:
        """Reserve ``n`` bytes.

        Raises:
            CapExceeded: the area would go past its cap (nothing is reserved).
        """
        if n > self.remaining:
            raise CapExceeded("the task's private area", _FIELD, self.cap)
        self._used += n
        self._peak = max(self._peak, self._used)

    def refund(self, n: int) -> None:
        self._used = max(0, self._used - n)

    def remove(self, path: os.PathLike[str] | str, size: int) -> None:
        """Delete a file of the area and give its ``size`` bytes back."""
        os.unlink(path)
        self.refund(size)


class MeteredFile(WrappedWriter):
    """A file in the private area whose growth is charged to an :class:`AreaBudget`.

    Supports what the writers in the worker use: ``write``, ``seek``, ``tell``,
    ``truncate``, ``flush``, ``close``. ``size`` is the file's high-water mark.
    """

    def __init__(self, inner: BinaryIO, budget: AreaBudget) -> None:
        super().__init__(inner)  # a new (empty) file, positioned at 0
        self._budget = budget
        self._pos = 0  # kept here: no lseek per write
        self.size = 0

    def seekable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Write all of ``data``, after charging what it adds to the file.

        Raises:
            CapExceeded: the area would go past its cap (nothing is written).
        """
        n = len(data) if type(data) is bytes else memoryview(data).nbytes
        end = self._pos + n
        if end > self.size:
            self._budget.charge(end - self.size)
            self.size = end
        self._inner.write(data)
        self._pos = end
        return n

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._pos = self._inner.seek(offset, whence)
        return self._pos

    def truncate(self, size: int | None = None) -> int:
        new = self._inner.truncate(size)
        if new < self.size:
            self._budget.refund(self.size - new)
            self.size = new
        return new


def remove_file(path: Path, area: AreaBudget | None) -> None:
    """Delete a file of the private area (if it is there), giving its bytes back."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if area is None:
        path.unlink(missing_ok=True)
    else:
        area.remove(path, size)
