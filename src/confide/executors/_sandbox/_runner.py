"""Run one function in a fresh sandbox process and supervise it.

The worker side of the sandbox: stages inputs in sealed memfds, starts
``bwrap`` with the harness, reads frames with a wall-clock deadline, routes
outputs and log lines under their caps, and turns every way the process can
end into either a :class:`~._protocol.Result` or a typed error. Cancel and
every failure kill the sandbox (its function process, then bwrap); the worker
itself never dies.
"""

from __future__ import annotations

import json
import logging
import os
import select
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...config import Limits
from .._base import CancelledError, CorruptedInput, TaskIO
from . import _protocol as proto
from ._bwrap import SANDBOX_LIB, SandboxConfig, bwrap_argv
from ._errors import ProtocolViolation, SandboxFailure, SandboxUnavailable
from ._seccomp import compile_policy
from ._sinks import LogRouter, OutputRouter
from ._staging import StagedFds, sealed_memfd, sealed_memfd_from_stream

__all__ = ["SandboxJob", "run_sandbox"]

_log = logging.getLogger(__name__)
_POLL_SECONDS = 0.05  # how often cancel is checked while the function runs
_EXIT_GRACE_SECONDS = 2.0  # time given to a process that sent its result to exit
_KILL_GRACE_SECONDS = 1.0  # for bwrap to exit once its child is killed
_READ_CHUNK = 1 << 16
_SECCOMP_HEX = compile_policy().hex()


@dataclass(frozen=True)
class SandboxJob:
    """What one run needs besides the task's files."""

    payload: bytes
    argv: Sequence[str]
    save_log: bool


def _rlimits(limits: Limits) -> dict[str, list[int]]:
    cpu = limits.python_cpu_seconds
    return {
        "RLIMIT_CPU": [cpu, cpu + 1],
        "RLIMIT_AS": [limits.python_memory_bytes] * 2,
        "RLIMIT_NPROC": [limits.python_max_threads] * 2,
        "RLIMIT_FSIZE": [limits.python_max_file_bytes] * 2,
        "RLIMIT_NOFILE": [limits.python_max_open_files] * 2,
        "RLIMIT_CORE": [0, 0],
        "RLIMIT_MEMLOCK": [0, 0],
        "RLIMIT_MSGQUEUE": [0, 0],
    }


def _manifest(job: SandboxJob, inputs: Mapping[str, int | None], outputs: Sequence[str],
              limits: Limits) -> bytes:  # fmt: skip
    doc: dict[str, Any] = {
        "argv": list(job.argv),
        "inputs": dict(inputs),
        "outputs": list(outputs),
        "save_log": job.save_log,
        "log": {
            "max_lines": limits.max_log_lines,
            "max_bytes": limits.python_max_log_bytes,
            "max_line_chars": limits.python_max_log_line_chars,
        },
        "max_frame": limits.python_max_frame_bytes,
        "rlimits": _rlimits(limits),
        "seccomp": _SECCOMP_HEX,
        "sys_path": [SANDBOX_LIB],
    }
    return json.dumps(doc).encode()


def _stage_inputs(io: TaskIO, staged: StagedFds, budget: int) -> dict[str, int | None]:
    """Open every assigned input; an integrity failure leaves it unopenable (Q29)."""
    fds: dict[str, int | None] = {}
    for name in sorted(io.input_names()):
        try:
            stream = io.open_input(name)
        except CorruptedInput:
            fds[name] = None
            continue
        with stream:
            fd, size = sealed_memfd_from_stream("input", stream, budget)
        budget -= size
        fds[name] = staged.add(fd)
    return fds


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


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the function process and bwrap, and reap bwrap."""
    if proc.returncode is None:
        if not _kill_function_process(proc.pid) or _reap(proc, _KILL_GRACE_SECONDS) is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the function dies with bwrap
            except ProcessLookupError:
                pass
            _reap(proc, None)


@dataclass(frozen=True)
class _Exit:
    returncode: int  # bwrap's: the function process's status, 128 + signal if killed
    cpu_seconds: float  # user + system time of bwrap and the processes it reaped


def _reap(proc: subprocess.Popen[bytes], timeout: float | None) -> _Exit | None:
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
    return _Exit(proc.returncode, usage.ru_utime + usage.ru_stime)


def _exit_failure(end: _Exit, limits: Limits) -> SandboxFailure:
    """Name the limit (or crash) behind an exit without a RESULT frame."""
    code = end.returncode
    sig = code - 128 if code > 128 else 0
    cpu = limits.python_cpu_seconds
    if sig == signal.SIGSYS:
        return SandboxFailure("seccomp", "Runtime Error: forbidden system call")
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and end.cpu_seconds >= cpu):
        return SandboxFailure("cpu", f"Runtime Error: CPU time limit exceeded ({cpu} s)")
    if sig == signal.SIGKILL:
        return SandboxFailure("crash", "Runtime Error: function process killed")
    if sig:
        return SandboxFailure("crash", f"Runtime Error: function process crashed (signal {sig})")
    return SandboxFailure("crash", f"Runtime Error: function exited without a result ({code})")


class _Session:
    """Frame handling state for one run."""

    def __init__(self, outputs: OutputRouter, logs: LogRouter, max_frame: int) -> None:
        self.decoder = proto.FrameDecoder(max_frame)
        self.outputs = outputs
        self.logs = logs
        self.ready = False
        self.result: proto.Result | None = None

    def feed(self, data: bytes) -> None:
        for frame in self.decoder.feed(data):
            if self.result is not None:
                return  # the harness is exiting; anything after RESULT is ignored
            self._dispatch(frame)

    def _dispatch(self, frame: proto.Frame) -> None:
        if frame.kind == proto.K_READY:
            if self.ready or frame.body:
                raise ProtocolViolation("unexpected READY")
            self.ready = True
        elif not self.ready:
            raise ProtocolViolation("frame before READY")
        elif frame.kind == proto.K_LOG:
            self.logs.on_line(proto.parse_log(frame.body))
        elif frame.kind == proto.K_CREATE:
            self.outputs.on_create(proto.parse_create(frame.body))
        elif frame.kind == proto.K_WRITE:
            self.outputs.on_write(*proto.parse_handle(frame.body))
        elif frame.kind == proto.K_CLOSE:
            handle, rest = proto.parse_handle(frame.body)
            if rest:
                raise ProtocolViolation("CLOSE with trailing bytes")
            self.outputs.on_close(handle)
        else:
            self.result = proto.parse_result(frame.body)


def run_sandbox(
    config: SandboxConfig,
    limits: Limits,
    job: SandboxJob,
    io: TaskIO,
    *,
    log: Callable[[str], None] | None,
    cancel: threading.Event,
    clock: Callable[[], float] = time.monotonic,
) -> proto.Result:
    """Run ``job`` in a fresh sandbox; return the harness's validated result.

    Raises:
        SandboxFailure: a limit, crash, seccomp kill or protocol violation.
        CancelledError: ``cancel`` was set.
    """
    outputs = OutputRouter(
        io.create_output,
        io.output_names(),
        max_output=limits.python_max_output_bytes,
        max_total=limits.python_max_total_output_bytes,
    )
    logs = LogRouter(
        log if job.save_log else None,
        max_lines=limits.max_log_lines,
        max_bytes=limits.python_max_log_bytes,
        max_line_chars=limits.python_max_log_line_chars,
    )
    with StagedFds.scope() as staged:
        inputs = _stage_inputs(io, staged, limits.python_max_input_bytes)
        manifest = _manifest(job, inputs, sorted(io.output_names()), limits)
        manifest_fd = staged.add(sealed_memfd("manifest", manifest))
        payload_fd = staged.add(sealed_memfd("payload", job.payload))
        out_r, out_w = os.pipe()
        staged.add(out_w)
        reader = os.fdopen(out_r, "rb", buffering=0)
        fds = [manifest_fd, payload_fd, out_w]
        argv = bwrap_argv(config, tmp_bytes=limits.python_tmp_bytes, fds=fds)
        if cancel.is_set():
            reader.close()
            raise CancelledError("cancelled before start")
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                pass_fds=[*fds, *(fd for fd in inputs.values() if fd is not None)],
                env={},  # the sandbox's pid 1 (bwrap) keeps the environment it starts with
                start_new_session=True,
            )
        except OSError as e:
            reader.close()
            raise SandboxUnavailable(f"cannot start bwrap: {e.strerror}") from e
        staged.close()  # the child holds its copies; EOF on out_r now means it exited
    session = _Session(outputs, logs, limits.python_max_frame_bytes)
    try:
        with reader:
            _supervise(proc, reader, session, limits, cancel, clock)
        return _finish(proc, session, limits)
    finally:
        _kill(proc)
        outputs.close_all()


def _supervise(
    proc: subprocess.Popen[bytes],
    reader: Any,
    session: _Session,
    limits: Limits,
    cancel: threading.Event,
    clock: Callable[[], float],
) -> None:
    """Pump frames until RESULT or EOF, enforcing the deadline and cancel."""
    stderr = proc.stderr
    if stderr is None:
        raise TypeError("the sandbox must be started with stderr=PIPE")
    kept = bytearray()
    deadline = clock() + limits.python_wall_seconds
    with selectors.DefaultSelector() as sel:
        sel.register(reader, selectors.EVENT_READ)
        sel.register(stderr, selectors.EVENT_READ)
        while session.result is None:
            if cancel.is_set():
                raise CancelledError("cancelled while running")
            remaining = deadline - clock()
            if remaining <= 0:
                secs = f"{limits.python_wall_seconds:g}"
                raise SandboxFailure("time", f"Runtime Error: time limit exceeded ({secs} s)")
            for key, _ in sel.select(min(remaining, _POLL_SECONDS)):
                data = os.read(key.fd, _READ_CHUNK)
                if key.fileobj is stderr:
                    if not data:
                        sel.unregister(stderr)
                    elif len(kept) < limits.python_max_stderr_bytes:
                        kept += data[: limits.python_max_stderr_bytes - len(kept)]
                elif data:
                    session.feed(data)
                else:
                    _log.debug("sandbox stderr: %s", kept.decode("utf-8", "replace"))
                    return


def _finish(proc: subprocess.Popen[bytes], session: _Session, limits: Limits) -> proto.Result:
    end = _reap(proc, _EXIT_GRACE_SECONDS)
    if session.result is not None:
        if session.result.state == "memory":
            mib = limits.python_memory_bytes // (1024 * 1024)
            raise SandboxFailure("memory", f"Runtime Error: memory limit exceeded ({mib} MiB)")
        return session.result
    if not session.ready:
        raise SandboxFailure("start", "Runtime Error: sandbox failed to start")
    if end is None:
        raise SandboxFailure("crash", "Runtime Error: function process did not exit")
    raise _exit_failure(end, limits)
