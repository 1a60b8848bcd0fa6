"""Run one function in a fresh sandbox process and supervise it.

The worker side of the sandbox: stages inputs in sealed memfds, hands them to
a pre-started sandbox from the pool or starts a cold one (``_launch.py``),
reads frames with a wall-clock deadline counted from that moment, routes
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
from ...invocation import CancelledError, CorruptedInput, TaskIO
from . import _protocol as proto
from ._bwrap import SandboxConfig
from ._errors import ProtocolViolation, SandboxFailure
from ._launch import Exit, Prestarted, job_fd_capacity, kill, reap, setup_doc, spawn
from ._pool import SandboxPool
from ._sinks import LogRouter, OutputRouter
from ._staging import StagedFds, sealed_memfd, sealed_memfd_from_stream

__all__ = ["SandboxJob", "run_sandbox"]

_log = logging.getLogger(__name__)
_POLL_SECONDS = 0.05  # how often cancel is checked while the function runs
_EXIT_GRACE_SECONDS = 2.0  # time given to a process that sent its result to exit
_READ_CHUNK = 1 << 16


@dataclass(frozen=True)
class SandboxJob:
    """What one run needs besides the task's files."""

    payload: bytes
    argv: Sequence[str]
    save_log: bool


def _job_manifest(job: SandboxJob, inputs: Mapping[str, int | None], outputs: Sequence[str],
                  limits: Limits) -> dict[str, Any]:  # fmt: skip
    """The job's part of the manifest; ``inputs`` maps a name to its index among
    the input fds (``None``: failed its integrity check, not staged)."""
    return {
        "argv": list(job.argv),
        "inputs": dict(inputs),
        "outputs": list(outputs),
        "save_log": job.save_log,
        "log": {
            "max_lines": limits.max_log_lines,
            "max_bytes": limits.max_log_bytes,
            "max_line_chars": limits.python_max_log_line_chars,
        },
        "max_frame": limits.python_max_frame_bytes,
    }


def _stage_inputs(
    io: TaskIO, staged: StagedFds, cap: int
) -> tuple[dict[str, int | None], list[int]]:
    """Open every assigned input; an integrity failure leaves it unopenable (Q29).

    Returns the name -> index map for the manifest and the fds in index order.
    """
    index: dict[str, int | None] = {}
    fds: list[int] = []
    budget = cap
    for name in sorted(io.input_names()):
        try:
            stream = io.open_input(name)
        except CorruptedInput:
            index[name] = None
            continue
        with stream:
            fd, size = sealed_memfd_from_stream("input", stream, budget, cap)
        budget -= size
        index[name] = len(fds)
        fds.append(staged.add(fd))
    return index, fds


def _exit_failure(end: Exit, limits: Limits) -> SandboxFailure:
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
    pool: SandboxPool | None = None,
) -> proto.Result:
    """Run ``job`` in a fresh sandbox; return the harness's validated result.

    With a ``pool``, the job goes to one of its pre-started sandboxes when one
    is ready (and the job's fds fit under its RLIMIT_NOFILE); otherwise, and
    without a pool, a cold sandbox is started for it. The limits are the same
    either way and the wall clock starts once the job is handed over. A
    pre-started sandbox that ends before READY (it died as the job arrived)
    never ran any function code: the job then runs in a cold sandbox.

    ``io`` and ``log`` enforce the task's output and log caps (they raise
    :class:`~confide.executors.CapExceeded`; see ``apply_caps``): a write or
    line past one ends the run as a ``SandboxFailure`` with the cap's reason.

    Raises:
        SandboxFailure: a limit, crash, seccomp kill or protocol violation.
        CancelledError: ``cancel`` was set.
    """
    outputs = OutputRouter(io.create_output, io.output_names())
    logs = LogRouter(log if job.save_log else None,
                     max_line_chars=limits.python_max_log_line_chars)
    try:
        with StagedFds.scope() as staged:  # held until the end, for a cold second attempt
            inputs, input_fds = _stage_inputs(io, staged, limits.max_input_bytes)
            manifest = _job_manifest(job, inputs, sorted(io.output_names()), limits)
            fds = [staged.add(sealed_memfd("payload", job.payload)), *input_fds]
            if pool is not None and 2 + len(fds) > job_fd_capacity(limits):
                pool = None  # more inputs than a waiting sandbox may receive: run cold
            attempt = _Attempt(config, limits, manifest, fds, outputs, logs, cancel, clock)
            if pool is not None:
                result = attempt.run(pool)
                if result is not None:
                    return result
                for fd in fds:
                    os.lseek(fd, 0, os.SEEK_SET)  # the dead harness may have read some
            result = attempt.run(None)
            if result is None:
                raise TypeError("a cold attempt always ends in a result or an error")
            return result
    finally:
        outputs.close_all()


@dataclass
class _Attempt:
    """Runs the staged job once, in a pre-started sandbox or a cold one."""

    config: SandboxConfig
    limits: Limits
    manifest: dict[str, Any]
    fds: list[int]  # PAYLOAD [INPUT...]: the OUT pipe and MANIFEST are added per attempt
    outputs: OutputRouter
    logs: LogRouter
    cancel: threading.Event
    clock: Callable[[], float]

    def run(self, pool: SandboxPool | None) -> proto.Result | None:
        """The result; None if the pre-started sandbox ended before READY."""
        if self.cancel.is_set():
            raise CancelledError("cancelled before start")
        out_r, out_w = os.pipe()
        reader = os.fdopen(out_r, "rb", buffering=0)
        try:
            try:
                proc, box = self._launch(pool, [self.fds[0], out_w, *self.fds[1:]])
            finally:
                os.close(out_w)  # the child holds its copy: EOF on out_r means it exited
        except BaseException:
            reader.close()
            raise
        session = _Session(self.outputs, self.logs, self.limits.python_max_frame_bytes)
        try:
            with reader:
                stderr = _supervise(proc, reader, session, self.limits, self.cancel, self.clock)
            if box is not None and not session.ready:
                _log.info("pre-started sandbox ended before its job started; running it cold")
                return None
            return _finish(proc, session, self.limits, stderr)
        finally:
            kill(proc)
            if box is not None and pool is not None:
                pool.release(box)

    def _launch(
        self, pool: SandboxPool | None, fds: Sequence[int]
    ) -> tuple[subprocess.Popen[bytes], Prestarted | None]:
        """Hand the job to a pre-started sandbox, or start a cold one for it.

        ``fds`` are ``PAYLOAD OUT [INPUT...]``; the manifest memfd goes first.
        """
        with StagedFds.scope() as own:
            if pool is not None:
                job_fd = own.add(sealed_memfd("manifest", json.dumps(self.manifest).encode()))
                while (box := pool.take()) is not None:
                    try:
                        return box.hand_over([job_fd, *fds]), box
                    except OSError as e:  # died between take() and now: never got the job
                        _log.info("pre-started sandbox gone at hand-over (%s)", e)
                        box.kill()
                        pool.release(box)
            cold = json.dumps({**setup_doc(self.limits), **self.manifest}).encode()
            cold_fd = own.add(sealed_memfd("manifest", cold))
            return spawn(self.config, self.limits, mode="run", fds=[cold_fd, *fds]), None


def _supervise(
    proc: subprocess.Popen[bytes],
    reader: Any,
    session: _Session,
    limits: Limits,
    cancel: threading.Event,
    clock: Callable[[], float],
) -> str:
    """Pump frames until RESULT or EOF, enforcing the deadline and cancel.

    Returns what the sandbox wrote to stderr (up to its cap) before EOF.
    """
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
                    if not session.ready:  # a failed start: say why (bwrap's, nsenter's words)
                        _drain(stderr, kept, limits.python_max_stderr_bytes)
                    text = kept.decode("utf-8", "replace")
                    _log.debug("sandbox stderr: %s", text)
                    return text
    return ""


def _drain(stderr: Any, kept: bytearray, cap: int) -> None:
    """Read what a sandbox that never started still has on stderr, until EOF.

    Only for a sandbox that ended before READY: no function code ran, so
    nothing but bwrap (or nsenter) holds the pipe, and it is exiting.
    """
    deadline = time.monotonic() + _EXIT_GRACE_SECONDS
    while (remaining := deadline - time.monotonic()) > 0:
        if not select.select([stderr], [], [], remaining)[0]:
            return
        data = os.read(stderr.fileno(), _READ_CHUNK)
        if not data:
            return
        kept += data[: max(0, cap - len(kept))]


def _finish(
    proc: subprocess.Popen[bytes], session: _Session, limits: Limits, stderr: str
) -> proto.Result:
    end = reap(proc, _EXIT_GRACE_SECONDS)
    if session.result is not None:
        if session.result.state == "memory":
            mib = limits.python_memory_bytes // (1024 * 1024)
            raise SandboxFailure("memory", f"Runtime Error: memory limit exceeded ({mib} MiB)")
        return session.result
    if not session.ready:
        raise SandboxFailure("start", "Runtime Error: sandbox failed to start", stderr.strip())
    if end is None:
        raise SandboxFailure("crash", "Runtime Error: function process did not exit")
    raise _exit_failure(end, limits)
