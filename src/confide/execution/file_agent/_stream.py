"""Bounded copying between file objects (no URLs, no policy)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO, Protocol

__all__ = ["CHUNK_BYTES", "ShortSource", "Writer", "read_exactly"]

CHUNK_BYTES = 256 * 1024


class Writer(Protocol):
    """Anything with ``write(bytes)``: a binary file or a buffered destination."""

    def write(self, data: bytes, /) -> int:
        """Write all of ``data``."""
        ...


class ShortSource(Exception):
    """The source ended before the declared size was read."""

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(f"source ended after {got} of {expected} bytes")
        self.expected = expected
        self.got = got


def read_exactly(src: BinaryIO, size: int) -> Iterator[bytes]:
    """Yield the next ``size`` bytes of ``src`` in chunks of at most ``CHUNK_BYTES``.

    Raises:
        ShortSource: ``src`` ended early.
    """
    left = size
    while left > 0:
        chunk = src.read(min(CHUNK_BYTES, left))
        if not chunk:
            raise ShortSource(size, size - left)
        left -= len(chunk)
        yield chunk
