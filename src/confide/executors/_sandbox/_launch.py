"""Starting and ending sandbox processes: cold, or pre-started and waiting.

A *cold* sandbox is started for one job: the job's fds are on the harness's
command line (``harness.py run``). A *pre-started* sandbox
(:class:`Prestarted`) is started before any job exists (``harness.py wait``):
bubblewrap's namespaces, the rlimits and the seccomp filter are in force and
the allowed packages (numpy) are imported; then it says ``K_IDLE`` and blocks
on its end of a socketpair until the worker hands it its one job's fds
(``SCM_RIGHTS``). Either way one process runs at most one job, then exits;
:func:`kill` and :func:`reap` end and collect it.

Every sandbox runs under a host uid/gid of its own (``_ids.py``), leased when
it is started and given back by :func:`kill` once it has been reaped; a
pre-started sandbox holds its ids while it waits.
"""

from __future__ import annotations

import functools
import json
import os
import select
import signal
import socket
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ...config import Limits
from ._bwrap import SANDBOX_LIB, SandboxConfig, bind_sources, bwrap_argv
from ._errors import SandboxUnavailable
from ._ids import IdLease, host_ids
from ._seccomp import compile_policy
from ._staging import StagedFds, sealed_memfd
from ._view import RuntimeView, make_view, world_reachable

__all__ = [
    "K_IDLE",
    "K_JOB",
    "Exit",
    "Prestarted",
    "address_space_bytes",
    "job_fd_capacity",
    "job_header",
    "kill",
    "reap",
    "runtime_view",
    "setup_doc",
    "spawn",
]

# The job socket's messages; duplicated in ``_harness.py`` (a test keeps them in step).
K_IDLE = b"W"  # sandbox -> worker: hardened, packages imported, waiting for its job
K_JOB = b"J"  # worker -> sandbox: K_JOB | fd count (u16 BE), the fds in SCM_RIGHTS
_MAX_SCM_FDS = 253  # SCM_MAX_FD: the kernel's cap on fds in one message
#: fds a waiting harness holds (0-2, its socket) plus slack for what the
#: interpreter and numpy keep open. RLIMIT_NOFILE is in force before the job
#: arrives, and a received fd must fit under it.
_WAITING_FDS = 8
_KILL_GRACE_SECONDS = 1.0  # for bwrap to exit once its child is killed
#: The ids each running sandbox holds, given back once it is reaped (:func:`kill`).
_leases: dict[subprocess.Popen[bytes], IdLease] = {}
_leases_lock = threading.Lock()


def address_space_bytes(limits: Limits) -> int:
    """``RLIMIT_AS`` of the function: the run's memory budget less its /tmp tmpfs.

    Raises:
        ValueError: the tmpfs alone takes the whole budget.
    """
    rest = limits.python_memory_bytes - limits.python_tmp_bytes
    if rest <= 0:
        raise ValueError("python_tmp_bytes must be smaller than python_memory_bytes")
    return rest


def _rlimits(limits: Limits) -> dict[str, list[int]]:
    cpu = limits.python_cpu_seconds
    return {
        "RLIMIT_CPU": [cpu, cpu + 1],
        "RLIMIT_AS": [address_space_bytes(limits)] * 2,
        "RLIMIT_NPROC": [limits.python_max_threads] * 2,
        "RLIMIT_FSIZE": [limits.python_max_file_bytes] * 2,
        "RLIMIT_NOFILE": [limits.python_max_open_files] * 2,
        "RLIMIT_CORE": [0, 0],
        "RLIMIT_MEMLOCK": [0, 0],
        "RLIMIT_MSGQUEUE": [0, 0],
    }


@functools.lru_cache(maxsize=16)
def _policy_hex(job_socket: int | None) -> str:
    return compile_policy(job_socket=job_socket).hex()


def job_header(fd_count: int) -> bytes:
    """The data part of the job message; its fds travel as ``SCM_RIGHTS``."""
    return K_JOB + fd_count.to_bytes(2, "big")


def job_fd_capacity(limits: Limits) -> int:
    """Most fds one job may hand to a pre-started sandbox (more: run it cold)."""
    return max(0, min(_MAX_SCM_FDS, limits.python_max_open_files - _WAITING_FDS))


def setup_doc(
    limits: Limits, *, job_socket: int | None = None, preload: Sequence[str] = ()
) -> dict[str, Any]:
    """What the harness applies before any job: limits, seccomp, import path.

    A cold sandbox gets this merged into its job's manifest; a pre-started one
    gets it alone, with the packages to import and its job socket's number
    (the only fd its seccomp filter lets it ``recvmsg`` on).
    """
    doc: dict[str, Any] = {
        "rlimits": _rlimits(limits),
        "seccomp": _policy_hex(job_socket),
        "sys_path": [SANDBOX_LIB],
    }
    if job_socket is not None:
        doc["preload"] = list(preload)
        doc["max_job_fds"] = job_fd_capacity(limits)
    return doc


@functools.lru_cache(maxsize=8)
def runtime_view(config: SandboxConfig) -> RuntimeView | None:
    """The view bwrap binds from, or None when its uid can reach every source.

    Raises:
        SandboxUnavailable: a view is needed and cannot be made.
    """
    sources = bind_sources(config)
    try:
        if all(world_reachable(src) for src in sources):
            return None
    except OSError as e:
        raise SandboxUnavailable(f"cannot read the sandbox's files: {e}") from e
    return make_view(sources)


def spawn(
    config: SandboxConfig, limits: Limits, *, mode: str, fds: Sequence[int]
) -> subprocess.Popen[bytes]:
    """Start ``bwrap`` running ``harness.py MODE FD...``; ``fds`` are inherited.

    bwrap and everything in the sandbox run as a host uid/gid leased for this
    sandbox alone (no supplementary groups); :func:`kill` gives it back.

    The sandbox dies with the *thread* that calls this (``--die-with-parent``
    is ``PR_SET_PDEATHSIG``, which follows the forking thread): call it on a
    thread that outlives the sandbox.

    Raises:
        SandboxUnavailable: the host cannot give the sandbox its own uid, or
            bwrap could not be executed.
        SandboxFailure: every sandbox uid is in use.
    """
    ids = host_ids(limits.python_sandbox_uid_base, limits.python_sandbox_uid_count)
    view = runtime_view(config)
    lease = ids.lease()
    try:
        argv = bwrap_argv(config, tmp_bytes=limits.python_tmp_bytes, fds=fds, mode=mode,
                          sources=view.paths if view is not None else None)  # fmt: skip
        if view is not None:  # nsenter enters the view, then drops to the ids, then runs bwrap
            argv = [*view.enter_argv(lease.uid, lease.gid), *argv]
            creds: dict[str, Any] = {}
        else:
            creds = {"user": lease.uid, "group": lease.gid, "extra_groups": []}
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            pass_fds=fds,
            env={},  # the sandbox's pid 1 (bwrap) keeps the environment it starts with
            start_new_session=True,
            **creds,
        )
    except OSError as e:
        lease.release()
        raise SandboxUnavailable(f"cannot start bwrap: {e.strerror}") from e
    except BaseException:
        lease.release()
        raise
    with _leases_lock:
        _leases[proc] = lease
    return proc


@dataclass(frozen=True)
class Exit:
    returncode: int  # bwrap's: the function process's status, 128 + signal if killed
    cpu_seconds: float  # user + system time of bwrap and the processes it reaped


def reap(proc: subprocess.Popen[bytes], timeout: float | None) -> Exit | None:
    """Wait for bwrap (up to ``timeout``; ``None`` = until it exits) and reap it."""
    if timeout is not None:
        pidfd = os.pidfd_open(proc.pid)
        try:
            if not select.select([pidfd], [], [], timeout)[0]:
                return None
        finally:
            os.close(pidfd)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Exit(proc.returncode, usage.ru_utime + usage.ru_stime)


def _kill_function_process(bwrap_pid: int) -> bool:
    """SIGKILL bwrap's child (the function, pid 1 inside); False if there is none.

    bwrap then reaps it and exits. Killing bwrap first would orphan the child
    (it dies of ``--die-with-parent``) to an init that may never reap it.
    """
    try:
        with open(f"/proc/{bwrap_pid}/task/{bwrap_pid}/children") as f:
            children = [int(pid) for pid in f.read().split()]
    except (OSError, ValueError):
        return False
    killed = False
    for child in children:
        try:
            pidfd = os.pidfd_open(child)
        except OSError:
            continue
        try:
            with open(f"/proc/{child}/stat") as f:  # still bwrap's child, not a reused pid
                ppid = int(f.read().rpartition(")")[2].split()[1])
            if ppid == bwrap_pid:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                killed = True
        except (OSError, ValueError, IndexError):
            pass
        finally:
            os.close(pidfd)
    return killed


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the function process and bwrap, reap bwrap, give the ids back."""
    if proc.returncode is None:
        if not _kill_function_process(proc.pid) or reap(proc, _KILL_GRACE_SECONDS) is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the function dies with bwrap
            except ProcessLookupError:
                pass
            reap(proc, None)
    if proc.stderr is not None:
        proc.stderr.close()
    with _leases_lock:
        lease = _leases.pop(proc, None)
    if lease is not None:
        lease.release()


class Prestarted:
    """One sandbox started ahead of its job; it will run exactly one job.

    Use :meth:`start`. The worker keeps its end of a ``SOCK_SEQPACKET``
    socketpair (non-blocking); the harness holds the other end until the job
    arrives, then closes it. :meth:`hand_over` works once.
    """

    def __init__(self, proc: subprocess.Popen[bytes], sock: socket.socket) -> None:
        self.proc = proc
        self._sock = sock
        self.ready = False  # K_IDLE received: hardened and waiting
        self._handed_over = False

    @classmethod
    def start(cls, config: SandboxConfig, limits: Limits) -> Prestarted:
        """Start a sandbox that hardens itself, imports numpy, then waits.

        Dies with the calling thread (see :func:`spawn`).

        Raises:
            SandboxUnavailable: bwrap could not be executed.
        """
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with StagedFds.scope() as staged:
                job_socket = staged.add(theirs.detach())
                setup = setup_doc(limits, job_socket=job_socket, preload=config.packages)
                setup_fd = staged.add(sealed_memfd("setup", json.dumps(setup).encode()))
                proc = spawn(config, limits, mode="wait", fds=[setup_fd, job_socket])
        except BaseException:
            ours.close()
            raise
        ours.setblocking(False)
        return cls(proc, ours)

    @property
    def pid(self) -> int:
        """bwrap's pid (the function process is its only child)."""
        return self.proc.pid

    def fileno(self) -> int:
        """The worker's end of the job socket (readable: K_IDLE or the sandbox died)."""
        return self._sock.fileno()

    def read_idle(self) -> bool | None:
        """Consume what the waiting sandbox sent: True on its first ``K_IDLE``,
        False if it died or sent anything else, None if nothing is there yet."""
        try:
            data = self._sock.recv(16)
        except BlockingIOError:
            return None
        except OSError:
            return False
        if data == K_IDLE and not self.ready:
            self.ready = True
            return True
        return False

    def alive(self) -> bool:
        """bwrap still runs and the harness has neither closed nor written since."""
        if self._handed_over or self.proc.poll() is not None:
            return False
        try:
            self._sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return True
        except OSError:
            return False
        return False  # EOF, or bytes a waiting harness never sends

    def hand_over(self, fds: Sequence[int]) -> subprocess.Popen[bytes]:
        """Send the job's fds (``MANIFEST PAYLOAD OUT [INPUT...]``); return the process.

        Raises:
            OSError: the sandbox is gone (the caller kills it and goes cold).
            RuntimeError: this sandbox was handed a job already.
        """
        if self._handed_over:
            raise RuntimeError("a pre-started sandbox runs one job only")
        self._handed_over = True
        try:
            socket.send_fds(self._sock, [job_header(len(fds))], list(fds))
        finally:
            self._sock.close()  # the harness holds the queued message; nothing else is sent
        return self.proc

    def kill(self) -> None:
        """End the sandbox (idle, dead or done) and reap it."""
        self._sock.close()
        kill(self.proc)
