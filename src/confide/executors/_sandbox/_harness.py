"""In-sandbox harness: runs one MesaPy-contract function (spec §5.7).

Started inside bubblewrap as ``python -I -S -B harness.py MODE FD...``. It
imports nothing from confide (the package is not in the sandbox). Two modes:

* ``run MANIFEST PAYLOAD OUT [INPUT...]`` (a cold sandbox): read the manifest,
  set resource limits, install the seccomp program, run the function;
* ``wait SETUP SOCKET`` (a pre-started sandbox): read the setup, set the limits,
  install seccomp, pre-import the allowed packages (numpy), tell the worker it
  is ready, then block until the one job (``MANIFEST PAYLOAD OUT [INPUT...]``)
  arrives as file descriptors on ``SOCKET`` (``SCM_RIGHTS``), close the socket
  and run the function. The process exits after that one job.

The function reports through frames on ``OUT`` (see ``_protocol.py``; the
layout is duplicated here on purpose and a test keeps both in step).
Everything in this process, the harness included, is as untrusted as the
function: the worker validates every frame it receives.
"""

from __future__ import annotations

import _thread
import builtins
import io
import json
import os
import struct
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

_signal: Any = __import__("_signal")  # the C module: no enum import at start-up

K_READY, K_LOG, K_CREATE, K_WRITE, K_CLOSE, K_RESULT = 1, 2, 3, 4, 5, 6
_HEADER = struct.Struct(">BI")
_HANDLE = struct.Struct(">I")
WRITE_HANDLE_BIT = 0x40000000
MAX_HANDLES = 1023
MESAPY_RESULT_LIMIT = 20480
_FFI_ERROR = "fileio_init: teaclave_ffi_error"
_WRITE_CHUNK = 64 * 1024
# The job socket of a pre-started sandbox (SOCK_SEQPACKET, see ``_launch.py``):
K_IDLE = b"W"  # sandbox -> worker: hardened, packages imported, waiting for its job
K_JOB = b"J"  # worker -> sandbox: ``K_JOB | fd count (u16)``, the fds in SCM_RIGHTS
_JOB_HEADER = struct.Struct(">cH")
EXIT_NO_JOB = 3  # no (well-formed) job arrived: exit before any function code


def _read_fd(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


class Channel:
    """Frames to the worker; one lock so threads never interleave frames."""

    def __init__(self, fd: int, max_frame: int) -> None:
        self.fd = fd
        self.max_body = max_frame
        self.lock = _thread.allocate_lock()

    def send(self, kind: int, body: bytes = b"") -> None:
        data = memoryview(_HEADER.pack(kind, len(body)) + body)
        with self.lock:
            while data:
                data = data[os.write(self.fd, data) :]


class LogSink:
    """Turns the function's lines into LOG frames, up to the line/byte caps.

    Sizes are counted as the worker counts them (``[LEVEL module] text`` in
    UTF-8). The first line past a cap is still sent, so the worker sees the
    cap exceeded and fails the task; nothing is sent after it.
    """

    def __init__(self, channel: Channel, enabled: bool, caps: dict[str, int]) -> None:
        self.channel = channel
        self.enabled = enabled
        self.lines_left = caps["max_lines"]
        self.bytes_left = caps["max_bytes"]
        self.line_chars = caps["max_line_chars"]

    def emit(self, level: str, module: str, text: str) -> None:
        if not self.enabled:
            return
        module = module[:64]
        for line in text.split("\n"):
            line = line[: self.line_chars]
            shown = line.replace("\r", "\\r")[: self.line_chars]  # as the worker shows it
            size = len(f"[{level} {module}] {shown}".encode("utf-8", "surrogatepass"))
            self.lines_left -= 1
            self.bytes_left -= size
            self.channel.send(K_LOG, json.dumps({"l": level, "m": module, "t": line}).encode())
            if self.lines_left < 0 or self.bytes_left < 0:
                self.enabled = False  # past a cap: the worker ends the task on this line
                return


class LineStream(io.TextIOBase):
    """``sys.stdout`` / ``sys.stderr`` replacement: one log line per text line."""

    def __init__(self, sink: LogSink, level: str) -> None:
        self.sink = sink
        self.level = level
        self.pending = ""

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        if not self.sink.enabled:
            return len(s)
        for i, part in enumerate(s.split("\n")):
            if i:
                self.sink.emit(self.level, "function", self.pending)
                self.pending = ""
            room = self.sink.line_chars - len(self.pending)
            if room > 0:
                self.pending += part[:room]  # a longer line is cut, not split
        return len(s)

    def flush(self) -> None:
        if self.pending:
            text, self.pending = self.pending, ""
            self.sink.emit(self.level, "function", text)


class PreadRaw(io.RawIOBase):
    """A private read position over a sealed input memfd."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = os.pread(self.fd, len(view), self.pos)
        view[: len(data)] = data
        self.pos += len(data)
        return len(data)


class InputFile:
    """Read-only file object for ``teaclave_open(name, "rb")``."""

    def __init__(self, fd: int) -> None:
        self._reader = io.BufferedReader(PreadRaw(fd))

    def read(self, size: int = -1) -> bytes:
        return self._reader.read(size)

    def readline(self, size: int = -1) -> bytes:
        return self._reader.readline(size)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return self._reader.readlines(hint)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._reader)

    @property
    def closed(self) -> bool:
        return self._reader.closed

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> InputFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OutputFile:
    """Write-only file object for ``teaclave_open(name, "wb")``."""

    def __init__(self, files: Files, handle: int, name: str) -> None:
        self._files = files
        self._handle = handle
        self.name = name
        self._buffer = bytearray()
        self.closed = False

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(memoryview(data))
        self._buffer += raw
        if len(self._buffer) >= _WRITE_CHUNK:
            self.flush()
        return len(raw)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        step = self._files.channel.max_body - _HANDLE.size
        prefix = _HANDLE.pack(self._handle)
        for start in range(0, len(self._buffer), step):
            chunk = bytes(self._buffer[start : start + step])
            self._files.channel.send(K_WRITE, prefix + chunk)
        self._buffer.clear()

    def close(self) -> None:
        if not self.closed:
            self.flush()
            self.closed = True
            self._files.channel.send(K_CLOSE, _HANDLE.pack(self._handle))

    def __enter__(self) -> OutputFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Files:
    """The runtime file API of spec §5.4 (handles 1..1023, write bit 30)."""

    def __init__(self, channel: Channel, inputs: dict[str, int | None], outputs: list[str]):
        self.channel = channel
        self.inputs = inputs
        self.outputs = set(outputs)
        self.next_handle = 1
        self.open_outputs: list[OutputFile] = []

    def _take_handle(self) -> int:
        if self.next_handle > MAX_HANDLES:
            raise RuntimeError(_FFI_ERROR)
        handle = self.next_handle
        self.next_handle += 1
        return handle

    def teaclave_open(self, name: Any, mode: Any = "rb") -> InputFile | OutputFile:
        if mode not in ("rb", "wb"):
            raise RuntimeError("Teaclave Not Supported")
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        if mode == "rb":
            fd = self.inputs.get(name) if isinstance(name, str) else None
            if fd is None:
                raise RuntimeError(_FFI_ERROR)
            self._take_handle()
            return InputFile(fd)
        if not isinstance(name, str) or name not in self.outputs:
            raise RuntimeError(_FFI_ERROR)
        for old in self.open_outputs:
            if old.name == name:
                old.close()  # each create starts the file afresh (spec §5.4)
        handle = self._take_handle() | WRITE_HANDLE_BIT
        self.channel.send(K_CREATE, json.dumps({"h": handle, "n": name}).encode())
        out = OutputFile(self, handle, name)
        self.open_outputs = [f for f in self.open_outputs if not f.closed] + [out]
        return out

    def close_all(self) -> None:
        for out in self.open_outputs:
            out.close()


def _apply_rlimits(limits: dict[str, list[int]]) -> None:
    import resource

    for name, (soft, hard) in limits.items():
        resource.setrlimit(getattr(resource, name), (soft, hard))


def _install_seccomp(program: bytes) -> None:
    import ctypes

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(program, len(program))
    prog = SockFprog(len(program) // 8, ctypes.addressof(buf))
    ulong = ctypes.c_ulong
    if libc.prctl(38, ulong(1), ulong(0), ulong(0), ulong(0)) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
    if libc.prctl(22, ulong(2), ctypes.byref(prog), ulong(0), ulong(0)) != 0:  # SECCOMP
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP failed")


_LEVELS = {50: "ERROR", 40: "ERROR", 30: "WARN", 20: "INFO", 10: "DEBUG"}


def _capture_logging(sink: LogSink) -> None:
    import logging

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            level = _LEVELS.get(record.levelno, "TRACE" if record.levelno < 10 else "INFO")
            sink.emit(level, record.name, record.getMessage())

    root = logging.getLogger()
    root.addHandler(Handler())
    root.setLevel(logging.INFO)


def _result_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value.encode("utf-8")  # lone surrogates raise, as a failed encoding did in MesaPy
        return value
    if isinstance(value, bytes):
        return value.decode("ascii")  # a Python 2 byte string; non-ASCII fails as in MesaPy
    raise TypeError(f"entrypoint returned {type(value).__name__}")


def run_function(source: bytes, argv: list[str], files: Files) -> dict[str, str]:
    """Run the payload; map the outcome to a RESULT body (spec §5.7, Q17)."""
    try:
        try:
            namespace: dict[str, Any] = {"__name__": "function", "__builtins__": builtins}
            exec(compile(source, "<function>", "exec"), namespace)  # noqa: S102
            entrypoint: Callable[[list[str]], object] = namespace["entrypoint"]
            text = _result_text(entrypoint(list(argv)))
        finally:
            files.close_all()
    except MemoryError:
        return {"s": "memory"}
    except BaseException:  # noqa: BLE001 - any failure of the function is its result
        return {"s": "exec_error"}
    if len(text.encode("utf-8")) > MESAPY_RESULT_LIMIT:
        return {"s": "too_long"}
    return {"s": "ok", "v": text}


def _harden(setup: dict[str, Any], exit_now: Callable[[int], object]) -> None:
    """Limits and seccomp: after this, nothing in the process can lift them."""
    # As the pid namespace's init, a default SIGXCPU would be ignored: exit as if killed by it.
    _signal.signal(_signal.SIGXCPU, lambda *_: exit_now(128 + _signal.SIGXCPU))
    _apply_rlimits(setup["rlimits"])
    _install_seccomp(bytes.fromhex(setup["seccomp"]))


def _preload(packages: list[str]) -> None:
    """Import the allowed packages now, so the function does not pay for them.

    Runs under the limits and seccomp. A failed import is undone (its modules
    leave ``sys.modules``): the function then meets the same error itself.
    """
    for name in packages:
        before = set(sys.modules)
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - reported to the function when it imports
            for module in set(sys.modules) - before:
                del sys.modules[module]


def _job_socket(fd: int) -> Any:
    """The socket the job arrives on; made before seccomp (it calls getsockname)."""
    import socket

    return socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, 0, fileno=fd)


def _wait_for_job(sock: Any, max_fds: int) -> list[int] | None:
    """Say IDLE, block for the one job; its fds, or None (closed or malformed)."""
    import socket

    os.write(sock.fileno(), K_IDLE)  # write(2): sendto is not allowed
    msg, fds, flags, _ = socket.recv_fds(sock, _JOB_HEADER.size + 1, max_fds)
    os.close(sock.detach())  # no second job can arrive: the socket is gone
    if len(msg) != _JOB_HEADER.size or flags & socket.MSG_CTRUNC:
        return None
    kind, count = _JOB_HEADER.unpack(msg)
    if kind != K_JOB or count != len(fds) or count < 3:
        return None
    return fds


def run_job(
    manifest: dict[str, Any],
    source: bytes,
    channel: Channel,
    input_fds: list[int],
    exit_now: Callable[[int], object],
) -> None:
    """Run the function (READY sent) and report its RESULT; then exit."""
    inputs = {name: None if i is None else input_fds[i] for name, i in manifest["inputs"].items()}
    files = Files(channel, inputs, manifest["outputs"])
    teaclave = types.ModuleType("teaclave")
    teaclave.open = files.teaclave_open  # type: ignore[attr-defined]
    sys.modules["teaclave"] = teaclave
    builtins.teaclave_open = files.teaclave_open  # type: ignore[attr-defined]
    sink = LogSink(channel, manifest["save_log"], manifest["log"])
    sys.stdout = LineStream(sink, "INFO")
    sys.stderr = LineStream(sink, "WARN")
    if manifest["save_log"]:
        _capture_logging(sink)

    result = run_function(source, manifest["argv"], files)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001, S110 - the function may have replaced the stream
            pass
    channel.send(K_RESULT, json.dumps(result).encode())
    exit_now(0)


def main(args: list[str]) -> None:
    exit_now = os._exit  # kept before the function can replace os._exit
    mode, fds = args[0], [int(a) for a in args[1:]]
    if mode == "run":  # fds: MANIFEST PAYLOAD OUT [INPUT...]
        manifest = json.loads(_read_fd(fds[0]))
        source = _read_fd(fds[1])
        channel = Channel(fds[2], manifest["max_frame"])
        _harden(manifest, exit_now)
        channel.send(K_READY)
        sys.path[:] = [*sys.path, *manifest["sys_path"]]
    elif mode == "wait":  # fds: SETUP SOCKET
        setup = json.loads(_read_fd(fds[0]))
        sock = _job_socket(fds[1])
        _harden(setup, exit_now)
        sys.path[:] = [*sys.path, *setup["sys_path"]]
        _preload(setup["preload"])
        job = _wait_for_job(sock, setup["max_job_fds"])
        if job is None:
            exit_now(EXIT_NO_JOB)
            return
        fds = job  # MANIFEST PAYLOAD OUT [INPUT...]
        manifest = json.loads(_read_fd(fds[0]))
        source = _read_fd(fds[1])
        channel = Channel(fds[2], manifest["max_frame"])
        channel.send(K_READY)
    else:
        exit_now(EXIT_NO_JOB)
        return
    run_job(manifest, source, channel, fds[3:], exit_now)


if __name__ == "__main__":
    main(sys.argv[1:])
