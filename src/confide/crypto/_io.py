"""Small helpers over binary file objects: full reads without extra copies."""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO, TypeAlias

from ._errors import CryptoError, CryptoLimitError

__all__ = ["ByteCounter", "Progress", "Rng", "read_exact", "read_full", "require_seekable"]

#: Called with the number of source bytes consumed since the previous call.
Progress: TypeAlias = Callable[[int], None]
#: Returns n random bytes (``os.urandom``); injected so tests are reproducible.
Rng: TypeAlias = Callable[[int], bytes]


def read_full(src: BinaryIO, view: memoryview) -> int:
    """Fill ``view`` from ``src``; return the byte count, short only at end of file."""
    readinto = getattr(src, "readinto", None)
    total = 0
    size = len(view)
    while total < size:
        if readinto is not None:
            n = readinto(view[total:])
        else:
            chunk = src.read(size - total)
            n = len(chunk)
            view[total : total + n] = chunk
        if not n:
            break
        total += n
    return total


def read_exact(src: BinaryIO, size: int) -> bytes:
    """Read up to ``size`` bytes, looping over short reads; short only at end of file."""
    buf = bytearray(size)
    n = read_full(src, memoryview(buf))
    del buf[n:]
    return bytes(buf)


def require_seekable(stream: BinaryIO, schema: str, role: str) -> None:
    """Raise :class:`CryptoError` unless ``stream`` supports random access."""
    if not stream.seekable():
        raise CryptoError(f"{schema} needs a seekable {role}")


class ByteCounter:
    """Counts untrusted input bytes against a cap and reports progress."""

    def __init__(self, cap: int, progress: Progress | None, what: str) -> None:
        self.total = 0
        self._cap = cap
        self._progress = progress
        self._what = what

    def check_total(self, size: int) -> None:
        """Refuse a stream whose total size (known up front) is over the cap."""
        if size > self._cap:
            raise CryptoLimitError(f"{self._what} exceeds {self._cap} bytes")

    def add(self, n: int) -> None:
        """Account for ``n`` more bytes; raise :class:`CryptoLimitError` past the cap."""
        self.total += n
        if self.total > self._cap:
            raise CryptoLimitError(f"{self._what} exceeds {self._cap} bytes")
        if self._progress is not None and n:
            self._progress(n)
