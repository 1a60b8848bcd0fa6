"""Plaintext handed to the sandbox through sealed memory files.

A memfd lives only in memory (nothing reaches a disk) and is sealed against
writes, growth and shrinking before the sandbox inherits it, so the function
can read its inputs but never change what the worker handed over.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from .._caps import CapExceeded
from ._errors import SandboxFailure

__all__ = ["StagedFds", "sealed_memfd", "sealed_memfd_from_stream"]

_SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
_CHUNK = 1 << 20


def _new_memfd(name: str) -> int:
    return os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _seal(fd: int) -> int:
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def sealed_memfd(name: str, data: bytes) -> int:
    """A sealed memfd holding ``data``; the caller owns (closes) the fd."""
    fd = _new_memfd(name)
    try:
        _write_all(fd, data)
        return _seal(fd)
    except BaseException:
        os.close(fd)
        raise


def sealed_memfd_from_stream(
    name: str, stream: BinaryIO, budget: int, cap: int
) -> tuple[int, int]:
    """Copy ``stream`` into a sealed memfd; return ``(fd, bytes copied)``.

    ``budget`` is what is left of ``cap`` (``Limits.max_input_bytes``) for this
    stream; at most ``budget + 1`` bytes are ever read from it.

    Raises:
        SandboxFailure: the stream holds more than ``budget`` bytes (cause
            ``input``, the reason of ``max_input_bytes`` = ``cap``).
    """
    fd = _new_memfd(name)
    total = 0
    try:
        while chunk := stream.read(min(_CHUNK, budget + 1 - total)):
            total += len(chunk)
            if total > budget:
                error = CapExceeded("inputs", "max_input_bytes", cap, plural=True)
                raise SandboxFailure(error.cause, error.reason)
            _write_all(fd, chunk)
        return _seal(fd), total
    except BaseException:
        os.close(fd)
        raise


class StagedFds:
    """Owns every fd staged for one run and closes them all on exit."""

    def __init__(self) -> None:
        self.fds: list[int] = []

    def add(self, fd: int) -> int:
        self.fds.append(fd)
        return fd

    def close(self) -> None:
        while self.fds:
            fd = self.fds.pop()
            try:
                os.close(fd)
            except OSError:
                pass

    @classmethod
    @contextmanager
    def scope(cls) -> Iterator[StagedFds]:
        staged = cls()
        try:
            yield staged
        finally:
            staged.close()
