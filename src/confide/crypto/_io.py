"""Small helpers over binary file objects: full reads without extra copies."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import BinaryIO, TypeAlias

from ._errors import CryptoError, CryptoLimitError

__all__ = [
    "BufferedSink",
    "ByteCounter",
    "Decryptor",
    "Progress",
    "Rng",
    "read_exact",
    "read_full",
    "require_seekable",
]

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


class BufferedSink(ABC):
    """A consumer that lends its own buffer to the producer (asyncio's BufferedProtocol).

    The producer fills :meth:`get_buffer` (``readinto``/``recv_into``) and
    reports the count with :meth:`buffer_updated`, so bytes go from the
    source straight into the consumer's memory; :meth:`write` is the copying
    form for producers that hold their own bytes.
    """

    @abstractmethod
    def get_buffer(self) -> memoryview:
        """A non-empty region to receive the next bytes (valid until the next call)."""

    @abstractmethod
    def buffer_updated(self, n: int) -> None:
        """``n`` bytes were written at the start of the last :meth:`get_buffer` region."""

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Copy ``data`` in through :meth:`get_buffer`; return its length."""
        view = memoryview(data).cast("B")
        total = len(view)
        while view:
            region = self.get_buffer()
            k = min(len(region), len(view))
            region[:k] = view[:k]
            self.buffer_updated(k)
            view = view[k:]
        return total

    def drain(self, src: BinaryIO) -> None:
        """Read ``src`` to its end into this sink (full regions, no extra copy)."""
        while True:
            region = self.get_buffer()
            n = read_full(src, region)
            if n:
                self.buffer_updated(n)
            if n < len(region):
                return


class Decryptor(BufferedSink):
    """Push-style verification and decryption (:func:`confide.crypto.new_decryptor`).

    Feed the untrusted ciphertext through :meth:`get_buffer` /
    :meth:`buffer_updated` (or :meth:`write`), then call :meth:`finish`, which
    raises unless the whole file verified. Plaintext is written to the
    destination as it is produced and is trustworthy only once :meth:`finish`
    returned; on any exception the destination must be discarded.
    """

    @abstractmethod
    def finish(self) -> bytes:
        """Verify the end of the file and the cmac; return the cmac."""

    def close(self) -> None:
        """Give the transfer up: release what the decryptor holds (a writer thread), and
        write nothing more to the destination once this returns. Safe after :meth:`finish`."""
