"""Making the sandbox's read-only sources reachable by its unprivileged uid.

bubblewrap runs as the sandbox's own host uid (see ``_ids.py``) and resolves
each ``--ro-bind`` source as that uid. An interpreter installed under a
directory others cannot search (pyenv under ``/root``, mode 0700) is then out
of reach. Rather than loosening host permissions, the worker builds a *view*
once: a private mount namespace, made by a short-lived thread (``unshare``
affects only the calling thread's mounts), in which a read-only tmpfs holds a
read-only bind of each source under a short name (``/run/0``, ``/run/1``, ...).
bwrap is then started through ``nsenter --mount=<view>`` (which also drops to
the sandbox's uid before it runs bwrap) and binds from there. The files
themselves keep their own permissions: only world-readable ones can be read.

Nothing of this reaches the host: the namespace's mounts are private (no
propagation either way) and it disappears with the worker. When every source
is already reachable by others, no view is made and bwrap is started directly.
Making the view needs ``CAP_SYS_ADMIN`` (root has it).
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from ..._mounts import (
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    mount,
    unshare_private_mounts,
)
from ._errors import SandboxUnavailable

__all__ = ["RuntimeView", "make_view", "world_reachable"]

_RO_FLAGS = MS_RDONLY | MS_NOSUID | MS_NODEV
#: Directories the view's tmpfs may cover, in order of preference; bwrap and
#: nsenter need none of them (bwrap's own scratch space is /tmp, never used here).
_VIEW_DIRS = ("/run", "/mnt", "/srv", "/opt")
_VIEW_TMPFS = b"mode=0755,size=65536"


def world_reachable(path: str) -> bool:
    """Can a uid with no relation to the file's owner read ``path``?

    Every ancestor must be searchable by others, and ``path`` readable (and,
    for a directory, searchable) by others. ACLs are not read: a path they
    close off fails the start-up check instead.
    """
    path = os.path.realpath(path)  # the directories actually searched, not a symlink's
    parent = os.path.dirname(path)
    while True:
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            return False
        if parent == "/":
            break
        parent = os.path.dirname(parent)
    mode = os.stat(path).st_mode
    need = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
    return mode & need == need


@dataclass(frozen=True)
class RuntimeView:
    """A mount namespace, held by an fd of this process, with each source at ``paths[i]``.

    Attributes:
        fd: the namespace (``/proc/thread-self/ns/mnt`` of the thread that made it).
        paths: for each source given to :func:`make_view`, where the view has it.
        nsenter: absolute path of util-linux ``nsenter``.
    """

    fd: int
    paths: tuple[str, ...]
    nsenter: str

    def enter_argv(self, uid: int, gid: int) -> list[str]:
        """The prefix that enters the view and drops to ``uid``/``gid`` (no groups).

        The namespace is named by this process's ``/proc/<pid>/fd/<fd>``, so no
        fd of it is inherited by bwrap or by the function.
        """
        return [
            self.nsenter,
            f"--mount=/proc/{os.getpid()}/fd/{self.fd}",
            f"--setgid={gid}",  # also drops the supplementary groups
            f"--setuid={uid}",
            "--",
        ]


def _build(sources: Sequence[str], base: str) -> tuple[int, tuple[str, ...]]:
    """In the calling thread: a private mount namespace with the sources under ``base``."""
    unshare_private_mounts()
    # Open the sources before the tmpfs may cover one of them (fds of this namespace's mounts).
    fds = [os.open(src, os.O_PATH | os.O_CLOEXEC) for src in sources]
    try:
        mount("tmpfs", base, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, _VIEW_TMPFS, "tmpfs")
        paths = []
        for i, (src, fd) in enumerate(zip(sources, fds, strict=True)):
            target = f"{base}/{i}"
            if os.path.isdir(src):
                os.mkdir(target, 0o755)
            else:
                os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
            mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC, None, f"bind {src}")
            mount(None, target, None, MS_BIND | MS_REMOUNT | _RO_FLAGS, None,
                  f"read-only {src}")  # fmt: skip
            paths.append(target)
        mount(None, base, None, MS_REMOUNT | _RO_FLAGS | MS_NOEXEC, _VIEW_TMPFS,
              "read-only view")  # fmt: skip
        ns = os.open("/proc/thread-self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        for fd in fds:
            os.close(fd)
    return ns, tuple(paths)


@functools.lru_cache(maxsize=8)
def make_view(sources: tuple[str, ...]) -> RuntimeView:
    """The view of ``sources`` for this process (made once, kept for its lifetime).

    Raises:
        SandboxUnavailable: no ``nsenter``, no directory to hold the view, or
            the namespace could not be made (no ``CAP_SYS_ADMIN``).
    """
    nsenter = shutil.which("nsenter")
    if nsenter is None:
        raise SandboxUnavailable("nsenter not found; install util-linux")
    base = next((d for d in _VIEW_DIRS if os.path.isdir(d) and not os.path.islink(d)), None)
    if base is None:
        raise SandboxUnavailable(f"none of {', '.join(_VIEW_DIRS)} exists to hold the view")
    outcome: list[tuple[int, tuple[str, ...]] | BaseException] = []

    def build() -> None:  # on its own thread: the namespace change dies with it
        try:
            outcome.append(_build(sources, base))
        except BaseException as e:  # noqa: BLE001 - handed to the caller below
            outcome.append(e)

    thread = threading.Thread(target=build, name="python-sandbox-view")
    thread.start()
    thread.join()
    result = outcome[0]
    if isinstance(result, BaseException):
        detail = result.strerror if isinstance(result, OSError) else str(result)
        raise SandboxUnavailable(f"cannot build the sandbox's view of its files ({detail})")
    fd, paths = result
    return RuntimeView(fd=fd, paths=paths, nsenter=nsenter)
