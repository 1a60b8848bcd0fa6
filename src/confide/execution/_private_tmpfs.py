"""The worker's private area on a tmpfs of its own, in a mount namespace of its own.

A worker that can (``CAP_SYS_ADMIN``, which root has, and no second thread
yet: ``unshare`` moves only the calling thread) calls :func:`mount_private_area`
first thing. It leaves the host's mount namespace (every mount private: nothing
propagates either way) and mounts a tmpfs over its area directory
(:func:`~confide.execution._staging.private_area`, created on the host first,
where it stays empty):

- ``huge=within_size``: a staged file is kept in large pages as far as its size
  allows. Writing 64 MiB to a new file takes 2.4-4.4 ms there, against ~20 ms
  on /dev/shm's 4 KiB pages (docs/crypto.md): that write was the largest single
  step of staging an input.
- ``size``: ``slots * max_task_area_bytes`` plus a margin for page rounding,
  a second fence behind the per-task :class:`~confide.execution._area.AreaBudget`.
- Not visible from the host: ``ls /dev/shm`` (even root's) shows an empty
  directory; the plaintext is reachable only from inside the worker's namespace
  (the worker, its sandboxes, ``/proc/<pid>/root``, ``nsenter``).
- Gone with the worker: when the worker and its sandboxes have exited, kill -9
  included, nothing holds the namespace and the kernel frees the tmpfs. On an
  orderly exit the worker unmounts it and removes the host directory itself
  (:func:`release_private_area`); after a kill the supervisor removes that
  empty directory, or, if the whole server was killed, the next start does.

Where this cannot be done (no ``CAP_SYS_ADMIN``: an unprivileged server), the
area is the plain 0700 directory on /dev/shm it always was, removed the same
way (by the worker on its way out, else by the supervisor). A kernel that
refuses ``huge=`` gets the tmpfs without it.
"""

from __future__ import annotations

import enum
import logging
import os
import threading

from .._mounts import MS_NODEV, MS_NOSUID, mount, unmount_detached, unshare_private_mounts
from ._staging import private_area, remove_private_area

__all__ = ["AreaKind", "area_tmpfs_bytes", "mount_private_area", "release_private_area"]

_log = logging.getLogger(__name__)
#: Per slot, on top of its area cap: the pages a file's last bytes round up to.
_MARGIN_PER_SLOT = 16 << 20


class AreaKind(enum.StrEnum):
    """What the worker's private area is."""

    HUGE_TMPFS = "private tmpfs, huge=within_size"
    TMPFS = "private tmpfs"
    DIRECTORY = "directory on the shared tmpfs"

    @property
    def write_behind(self) -> bool:
        """Whether staging should write on a helper thread: not where large pages
        make writes cheaper than the hand-off (docs/crypto.md)."""
        return self is not AreaKind.HUGE_TMPFS


def area_tmpfs_bytes(slots: int, max_task_area_bytes: int) -> int:
    """The size of the worker's tmpfs: every slot's area cap, plus page rounding."""
    return max(1, slots) * (max_task_area_bytes + _MARGIN_PER_SLOT)


def mount_private_area(size: int) -> AreaKind:
    """Put this process's private area on a tmpfs of its own (see the module doc).

    Call it while the process has a single thread. Never raises: where it
    cannot, it says why (logged) and the area stays a directory.
    """
    area = private_area(os.getpid())
    try:
        area.mkdir(mode=0o700, exist_ok=True)
    except OSError as e:  # staging will name the cause when a task needs the area
        _log.warning("cannot create the private area %s: %s", area, e.strerror)
        return AreaKind.DIRECTORY
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:  # the other threads would stay in the host's namespace
        _log.warning("private area stays a directory: %d threads already run", threads)
        return AreaKind.DIRECTORY
    try:
        unshare_private_mounts()
    except OSError as e:
        _log.info("private area stays a directory on %s: %s", area.parent, e.strerror)
        return AreaKind.DIRECTORY
    base = f"mode=0700,uid={os.geteuid()},gid={os.getegid()},size={size}"
    for kind, options in ((AreaKind.HUGE_TMPFS, f"{base},huge=within_size"),
                          (AreaKind.TMPFS, base)):  # fmt: skip
        try:
            mount("tmpfs", str(area), "tmpfs", MS_NOSUID | MS_NODEV, options.encode(), "tmpfs")
        except OSError as e:
            _log.info("the private area's tmpfs refused %r: %s", options, e.strerror)
            continue
        _log.info("private area %s: %s of %d bytes", area, kind, size)
        return kind
    return AreaKind.DIRECTORY


_releasing = threading.Lock()
_released = False


def release_private_area(kind: AreaKind) -> None:
    """On the worker's way out: unmount its tmpfs (if it has one) and remove the
    area directory from the host. Never raises.

    Once per process, whichever thread comes first (the main thread's cleanup
    and the orphan watch may both be leaving); a second caller returns only
    when the first is done, so neither exits the process halfway.
    """
    global _released
    with _releasing:
        if _released:
            return
        _released = True
        area = private_area(os.getpid())
        if kind is not AreaKind.DIRECTORY:
            try:
                unmount_detached(str(area))
            except OSError as e:
                _log.warning("could not unmount the private area %s: %s", area, e.strerror)
                return  # the kernel frees it with the namespace; the supervisor removes the dir
        remove_private_area(os.getpid())
