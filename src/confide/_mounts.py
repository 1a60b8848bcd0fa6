"""The two Linux calls confide makes its private mounts with: ``unshare`` and ``mount``.

Used by the sandbox's view of its files (``executors._sandbox._view``) and by
the worker's private staging tmpfs (``execution._private_tmpfs``). Both first
leave the host's mount namespace and make every mount private, so nothing they
mount propagates back to the host, and both need ``CAP_SYS_ADMIN``.

``unshare(CLONE_NEWNS)`` moves only the calling *thread* to the new namespace;
callers either do it on a thread of its own that ends with it, or while their
process has no other thread.
"""

from __future__ import annotations

import ctypes
import functools
import os

__all__ = [
    "MS_BIND",
    "MS_NODEV",
    "MS_NOEXEC",
    "MS_NOSUID",
    "MS_RDONLY",
    "MS_REC",
    "MS_REMOUNT",
    "mount",
    "unmount_detached",
    "unshare_private_mounts",
]

_CLONE_NEWNS = 0x00020000
_MNT_DETACH = 2
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, _MS_PRIVATE = 32, 4096, 16384, 1 << 18


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_ulong,
        ctypes.c_char_p,
    ]
    return libc


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def unshare_private_mounts() -> None:
    """Move the calling thread to a new mount namespace in which no mount propagates.

    Raises:
        OSError: not permitted (no ``CAP_SYS_ADMIN``), or the kernel refused.
    """
    libc = _libc()
    _check(libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    # First of all: no mount made below may propagate back to the host.
    _check(libc.mount(None, b"/", None, MS_REC | _MS_PRIVATE, None), "make / private")


def mount(source: str | None, target: str, fstype: str | None, flags: int,
          data: bytes | None, what: str) -> None:  # fmt: skip
    """``mount(2)``; ``what`` names the step in the error.

    Raises:
        OSError: the kernel refused (its errno, with ``what`` in the message).
    """
    _check(_libc().mount(source.encode() if source else None, target.encode(),
                         fstype.encode() if fstype else None, flags, data), what)  # fmt: skip


def unmount_detached(target: str) -> None:
    """``umount2(target, MNT_DETACH)``: gone from the namespace now, freed once unused.

    Raises:
        OSError: the kernel refused (not a mount point, not permitted).
    """
    _check(_libc().umount2(target.encode(), _MNT_DETACH), f"unmount {target}")
