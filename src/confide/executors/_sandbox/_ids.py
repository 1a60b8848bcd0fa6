"""Host uids/gids for sandboxes: each live sandbox has its own.

``bwrap --unshare-user`` maps the sandbox's uid to the uid of whoever started
bwrap: a worker running as root would hand host root to the function. So the
worker starts every sandbox under a host uid/gid taken from a subordinate range
(``Limits.python_sandbox_uid_base`` .. ``+ python_sandbox_uid_count``) that is
neither root, nor the worker's, nor any account or subordinate range of the
host. Distinct ids per live sandbox make the kernel keep them apart (signals,
ptrace, ``/proc/<pid>/*``) and enforce ``RLIMIT_NPROC`` (the kernel skips it
for real uid 0).

A lease is an exclusive ``flock`` on ``<lock dir>/<uid>``: every confide
process on the host uses the same directory, and the kernel drops the lock
when the holder dies. A lease removes its file when it is given back (while
still holding the lock), and a new lease counts only if the file it locked is
still the one at that path, so the directory holds one file per live sandbox
(and those of holders that died) rather than one per id ever used.

Giving processes other uids needs ``CAP_SETUID`` and ``CAP_SETGID`` (root has
them); without them no range is handed out and the Python executor refuses to
run (:class:`SandboxUnavailable`).

:func:`check_range` is pure (texts in, error out); :func:`host_ids` reads the
system files and keeps one allocator per range for the process.
"""

from __future__ import annotations

import fcntl
import functools
import os
import secrets
import stat
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from ._errors import SandboxFailure, SandboxUnavailable

__all__ = [
    "DEFAULT_LOCK_DIR",
    "HostIds",
    "IdLease",
    "IdRange",
    "check_range",
    "host_ids",
    "missing_capabilities",
]

#: Where leases are kept; shared by every confide process on the host.
DEFAULT_LOCK_DIR = "/run/confide/sandbox-ids"
_CAP_SETGID, _CAP_SETUID = 6, 7
_HIGHEST_ID = 2**31 - 1  # ids at or above 2^31 are read as negative by too many tools


@dataclass(frozen=True)
class IdRange:
    """``count`` host ids from ``base``; uid and gid of a sandbox are the same number."""

    base: int
    count: int

    @property
    def last(self) -> int:
        return self.base + self.count - 1

    def overlaps(self, start: int, length: int) -> bool:
        return start <= self.last and self.base < start + length


def _account_ids(text: str, field: int) -> Iterable[tuple[str, int]]:
    """(name, id) of each ``name:x:id:...`` line of a passwd or group file."""
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) > field and parts[field].isdigit():
            yield parts[0], int(parts[field])


def _subordinate_ranges(text: str) -> Iterable[tuple[str, int, int]]:
    """(owner, start, count) of each ``owner:start:count`` line of /etc/subuid."""
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            yield parts[0], int(parts[1]), int(parts[2])


def _mapped(id_map: str, rng: IdRange) -> bool:
    """Is every id of ``rng`` in this ``/proc/self/uid_map`` (inside ids)?"""
    for line in id_map.splitlines():
        parts = line.split()
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            inside, length = int(parts[0]), int(parts[2])
            if inside <= rng.base and rng.last < inside + length:
                return True
    return False


def check_range(
    rng: IdRange,
    *,
    worker_ids: tuple[int, int],
    passwd: str,
    group: str,
    subuid: str,
    subgid: str,
    uid_map: str,
    gid_map: str,
) -> None:
    """Refuse a range that could give a sandbox an id someone else owns.

    Args:
        worker_ids: the worker's own (uid, gid).
        passwd, group, subuid, subgid: contents of the host's files ("" if absent).
        uid_map, gid_map: the worker's ``/proc/self/uid_map`` and ``gid_map``.

    Raises:
        SandboxUnavailable: naming the first collision found.
    """
    if rng.count < 1 or rng.base < 1 or rng.last > _HIGHEST_ID:
        raise SandboxUnavailable(
            f"sandbox uid range {rng.base}+{rng.count} must lie within 1..{_HIGHEST_ID}"
        )
    where = f"sandbox uid range {rng.base}-{rng.last}"
    for kind, own in zip(("uid", "gid"), worker_ids, strict=True):
        if rng.overlaps(own, 1):
            raise SandboxUnavailable(f"{where} holds the worker's own {kind} {own}")
    for path, text, field in (("/etc/passwd", passwd, 2), ("/etc/group", group, 2)):
        for name, ident in _account_ids(text, field):
            if rng.overlaps(ident, 1):
                raise SandboxUnavailable(f"{where} holds {ident} ({name} in {path})")
    for path, text in (("/etc/subuid", subuid), ("/etc/subgid", subgid)):
        for owner, start, count in _subordinate_ranges(text):
            if rng.overlaps(start, count):
                raise SandboxUnavailable(
                    f"{where} overlaps {owner}'s subordinate ids {start}+{count} in {path}"
                )
    for kind, id_map in (("uid", uid_map), ("gid", gid_map)):
        if not _mapped(id_map, rng):
            raise SandboxUnavailable(
                f"{where} is not mapped in the worker's user namespace ({kind}_map)"
            )


def missing_capabilities(status: str, needed: dict[str, int]) -> list[str]:
    """Names in ``needed`` whose bit is not in ``CapEff`` of a ``/proc/<pid>/status`` text."""
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            effective = int(line.split()[1], 16)
            return sorted(name for name, bit in needed.items() if not effective >> bit & 1)
    return sorted(needed)


class IdLease:
    """One sandbox's host uid and gid, held until :meth:`release` (or process death)."""

    def __init__(self, ident: int, lock_path: str, lock_fd: int) -> None:
        self.uid = ident
        self.gid = ident
        self._path = lock_path
        self._fd = lock_fd

    def release(self) -> None:
        """Free the ids (idempotent). Call only once the sandbox has been reaped."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            try:
                os.unlink(self._path)  # under the lock: whoever locks it next sees it is stale
            except FileNotFoundError:
                pass
            os.close(fd)


def _try_lock(path: str) -> int | None:
    """An fd holding the exclusive lock of the file now at ``path``, or None if taken."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held = os.fstat(fd)
        current = os.stat(path, follow_symlinks=False)
    except (BlockingIOError, FileNotFoundError):
        os.close(fd)
        return None  # held by another lease, or released (and removed) meanwhile
    except BaseException:
        os.close(fd)
        raise
    if (held.st_dev, held.st_ino) != (current.st_dev, current.st_ino):
        os.close(fd)  # locked a file a lease removed on release; the id is someone else's now
        return None
    return fd


class HostIds:
    """Hands out the ids of ``rng``, one per live sandbox, round robin.

    Round robin (from a random start) rather than lowest-free: an id just
    released is the last to be handed out again.
    """

    def __init__(self, rng: IdRange, lock_dir: str = DEFAULT_LOCK_DIR) -> None:
        self.range = rng
        self._dir = lock_dir
        self._lock = threading.Lock()
        self._next = secrets.randbelow(rng.count)

    def lease(self) -> IdLease:
        """An id no other live sandbox on this host holds.

        Raises:
            SandboxFailure: every id of the range is in use (cause ``start``).
        """
        with self._lock:
            for _ in range(self.range.count):
                ident = self.range.base + self._next
                self._next = (self._next + 1) % self.range.count
                path = os.path.join(self._dir, str(ident))
                fd = _try_lock(path)
                if fd is not None:
                    return IdLease(ident, path, fd)
        raise SandboxFailure(
            "start", f"Runtime Error: all {self.range.count} sandbox uids are in use"
        )


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def _private_dir(path: str) -> None:
    """Create ``path`` (0700) or check that only this user can write it."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    for part in (os.path.dirname(path), path):
        info = os.lstat(part)
        if (
            not stat.S_ISDIR(info.st_mode)
            or info.st_uid != os.geteuid()
            or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        ):
            raise SandboxUnavailable(
                f"{part} must be a directory owned by uid {os.geteuid()} that no one else can "
                "write (it holds the sandbox uid leases)"
            )


@functools.lru_cache(maxsize=8)
def host_ids(base: int, count: int, lock_dir: str = DEFAULT_LOCK_DIR) -> HostIds:
    """The process's allocator for this range, after checking the host can use it.

    Raises:
        SandboxUnavailable: the worker cannot switch uids (not root and without
            ``CAP_SETUID``/``CAP_SETGID``), the range collides with an account,
            a subordinate range or the worker's ids, or the lock directory is unsafe.
    """
    missing = missing_capabilities(
        _read("/proc/self/status"), {"CAP_SETUID": _CAP_SETUID, "CAP_SETGID": _CAP_SETGID}
    )
    if missing:
        raise SandboxUnavailable(
            f"the worker runs as uid {os.geteuid()} without {' and '.join(missing)}, so it "
            "cannot give each sandbox its own host uid; start the server as root"
        )
    rng = IdRange(base, count)
    check_range(
        rng,
        worker_ids=(os.geteuid(), os.getegid()),
        passwd=_read("/etc/passwd"),
        group=_read("/etc/group"),
        subuid=_read("/etc/subuid"),
        subgid=_read("/etc/subgid"),
        uid_map=_read("/proc/self/uid_map"),
        gid_map=_read("/proc/self/gid_map"),
    )
    try:
        _private_dir(lock_dir)
    except OSError as e:
        raise SandboxUnavailable(f"cannot create {lock_dir}: {e.strerror}") from e
    return HostIds(rng, lock_dir)
