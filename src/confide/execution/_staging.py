"""Staging a task's files inside the worker (spec §5.1).

Inputs are fetched through the file agent into a private temporary area
(memory backed where the system has /dev/shm) that is removed when the task
ends. AES-GCM and confide's streaming format are decrypted *while they
download*, in one pass: the file agent receives the body straight into the
buffer of a :class:`_DecryptingSink`, which verifies and writes plaintext into
the private area; the file counts only once the whole body arrived, the tag
or cmac matched the registered one and GCM verified -- otherwise the partial
plaintext is deleted before anything else happens. teaclave-file-128 (which
needs random access, and is verified when the function opens it, spec Q29)
and raw are downloaded to a file as they are.
Outputs are written in plaintext by the function, then encrypted with each
output's registered crypto info, uploaded, and their cmacs returned.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import urlsplit

from ..config import Limits
from ..crypto import (
    PUSH_SCHEMAS,
    CryptoError,
    Decryptor,
    decrypt_stream,
    encrypt_stream,
    new_decryptor,
)
from ..executors import CorruptedInput, FunctionError, InvalidInputName, InvalidOutputName
from ..telemetry._metrics import WORKER_STAGED_BYTES
from .file_agent import BufferedDestination, FileAgentError

__all__ = [
    "TRANSFER_FAILED",
    "FileTransport",
    "StagedIO",
    "Stager",
    "private_area",
    "remove_private_area",
    "sweep_private_areas",
]

TRANSFER_FAILED = "ocall error = 1"
_STAGED_IN = WORKER_STAGED_BYTES.labels("in")
_STAGED_OUT = WORKER_STAGED_BYTES.labels("out")
_GCM_NAMES = {"aes-gcm-128": "AesGcm128", "aes-gcm-256": "AesGcm256"}
_MISSING_OUTPUT = {
    "teaclave-file-128": "Convert teaclave_file: failed to open src file",
    "aes-gcm-128": "Convert aes-gcm-128: failed to open src file",
    "aes-gcm-256": "Convert aes-gcm-256: failed to open src file",
}


class FileTransport(Protocol):
    """Moves ciphertext between a URL and a local file (the file agent)."""

    def download(
        self, url: str, dst: BinaryIO | BufferedDestination, *, max_bytes: int
    ) -> int: ...

    def upload(self, url: str, src: BinaryIO, size: int) -> None: ...


def _private_root() -> Path:
    shm = Path("/dev/shm")  # noqa: S108 - memory-backed; every area below is a 0700 dir
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


def private_area(pid: int) -> Path:
    """The directory under which worker ``pid`` stages its tasks.

    A worker that is killed cannot wipe its task's plaintext itself, so the
    supervisor removes this directory when it sees the worker die
    (:func:`remove_private_area`).
    """
    return _private_root() / f"confide-worker-{pid}"


def remove_private_area(pid: int) -> None:
    shutil.rmtree(private_area(pid), ignore_errors=True)


def sweep_private_areas() -> list[int]:
    """Remove the private areas of workers that are no longer running (left by a
    crash of the whole server); returns their pids."""
    swept = []
    for area in _private_root().glob("confide-worker-*"):
        pid = area.name.removeprefix("confide-worker-")
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue  # a running process (or a pid reused since): leave it
        shutil.rmtree(area, ignore_errors=True)
        swept.append(int(pid))
    return swept


class StagedIO:
    """The :class:`~confide.executors.TaskIO` of one task."""

    def __init__(self, work: Path, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]],
                 stager: Stager) -> None:
        self._work = work
        self._inputs = {f["name"]: f for f in inputs}
        self._outputs = {f["name"]: f for f in outputs}
        self._stager = stager
        self._plain: dict[str, Path] = {}
        self._written: set[str] = set()

    def input_names(self) -> list[str]:
        return sorted(self._inputs)

    def output_names(self) -> list[str]:
        return sorted(self._outputs)

    def _path(self, kind: str, name: str) -> Path:
        return self._work / f"{kind}-{len(self._plain) + len(self._written)}-{os.urandom(4).hex()}"

    def prepare(self) -> None:
        """Fetch every input; aes-gcm and confide-stream-256 are verified and decrypted
        while they download, teaclave-file-128 and raw are stored as they are."""
        for name, f in self._inputs.items():
            if f["schema"] in PUSH_SCHEMAS:
                self._plain[name] = self._stager.fetch_decrypted(f, self._path("plain", name))
                continue
            cipher = self._path("cipher", name)
            self._stager.fetch(f["url"], cipher)
            f["_cipher"] = cipher
            if f["schema"] == "raw":
                self._plain[name] = cipher

    def open_input(self, name: str) -> BinaryIO:
        f = self._inputs.get(name)
        if f is None:
            raise InvalidInputName(name)
        if name not in self._plain:
            local = f["_cipher"]
            try:
                self._plain[name] = self._stager.decrypt(f, local, self._path("plain", name))
            except FunctionError as e:
                raise CorruptedInput(name, str(local)) from e
        return open(self._plain[name], "rb")

    def create_output(self, name: str) -> BinaryIO:
        if name not in self._outputs:
            raise InvalidOutputName(name)
        self._written.add(name)
        fd = os.open(self._work / f"out-{name.encode().hex()}",
                     os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        return os.fdopen(fd, "wb")

    def finish(self) -> dict[str, bytes]:
        """Encrypt and upload every assigned output; their cmacs by name.

        Every output is checked before the first is uploaded, so a task with a
        missing output leaves no result behind.
        """
        ready: list[tuple[str, dict[str, Any], Path]] = []
        for name, f in sorted(self._outputs.items()):
            if f["schema"] == "raw":
                raise FunctionError("OutputFile: unsupported type")
            plain = self._work / f"out-{name.encode().hex()}"
            if name not in self._written or not plain.exists():
                raise FunctionError(_MISSING_OUTPUT.get(f["schema"],
                                                        "failed to open src file"))
            ready.append((name, f, plain))
        return {name: self._stager.seal_and_upload(f, plain, self._path("sealed", name))
                for name, f, plain in ready}


class Stager:
    """Creates each task's private area and moves its files in and out."""

    def __init__(self, transport: FileTransport, limits: Limits) -> None:
        self._transport = transport
        self._limits = limits

    @contextmanager
    def stage(self, task_id: str, inputs: list[dict[str, Any]],
              outputs: list[dict[str, Any]]) -> Iterator[StagedIO]:
        area = private_area(os.getpid())
        area.mkdir(mode=0o700, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="task-", dir=area))
        try:
            io = StagedIO(work, [dict(f) for f in inputs], [dict(f) for f in outputs], self)
            io.prepare()
            yield io
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def fetch(self, url: str, dst: Path) -> None:
        try:
            with open(dst, "wb") as out:
                self._transport.download(url, out, max_bytes=self._limits.max_download_bytes)
                _STAGED_IN.inc(out.tell())
        except FileAgentError as e:
            raise FunctionError(TRANSFER_FAILED) from e

    def fetch_decrypted(self, f: dict[str, Any], plain: Path) -> Path:
        """Download, verify and decrypt an aes-gcm or confide-stream-256 input in one pass.

        Nothing is left at ``plain`` unless the whole file verified against its
        registered cmac. Errors are Teaclave's, naming the staged file.
        """
        sink = _DecryptingSink(f, plain, self._limits)
        label = _GCM_NAMES.get(f["schema"])
        try:
            try:
                self._transport.download(
                    f["url"], sink, max_bytes=self._limits.max_download_bytes
                )
            except FileAgentError as e:
                raise FunctionError(TRANSFER_FAILED) from e
            _STAGED_IN.inc(sink.tell())
            if label is not None and sink.tell() < 16:
                raise FunctionError(f"{label} File, invalid length: {sink.tell()}")
            sink.finish()
        except CryptoError as e:
            sink.discard()
            if label is not None:
                raise FunctionError(f'{label} File, invalid tag: "{plain}"') from e
            raise FunctionError(f'Corrupted input file: "{plain}"') from e
        except BaseException:
            sink.discard()  # nothing partial is ever handed to a function
            raise
        return plain

    def decrypt(self, f: dict[str, Any], cipher: Path, plain: Path) -> Path:
        """Decrypt a downloaded teaclave-file-128 input (when the function opens it)."""
        fd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            with open(cipher, "rb") as src, os.fdopen(fd, "wb") as dst:
                decrypt_stream(f["schema"], f["key"], f["iv"], src, dst,
                               expected_cmac=f["cmac"], file_name=_file_name(f["url"]),
                               limits=self._limits)  # fmt: skip
        except CryptoError as e:
            plain.unlink(missing_ok=True)  # nothing partial is ever handed to a function
            raise FunctionError(f'Corrupted input file: "{cipher}"') from e
        return plain

    def seal_and_upload(self, f: dict[str, Any], plain: Path, sealed: Path) -> bytes:
        with open(plain, "rb") as src, open(sealed, "wb") as dst:
            tag = encrypt_stream(f["schema"], f["key"], f["iv"], src, dst,
                                 file_name=_file_name(f["url"]), limits=self._limits)
        try:
            size = sealed.stat().st_size
            with open(sealed, "rb") as src:
                self._transport.upload(f["url"], src, size)
            _STAGED_OUT.inc(size)
        except FileAgentError as e:
            raise FunctionError(TRANSFER_FAILED) from e
        return tag


class _DecryptingSink:
    """The file agent's destination for one push-decrypted input.

    It lends the decryptor's buffer to the HTTP receiver
    (:class:`~confide.execution.file_agent.BufferedDestination`) and writes
    plaintext to a new 0600 file in the private area. "Seeking" back to 0 --
    what the file agent does before retrying a failed attempt -- truncates
    the plaintext and starts a fresh decryptor; no other position is allowed.
    """

    def __init__(self, f: dict[str, Any], plain: Path, limits: Limits) -> None:
        self._f = f
        self._path = plain
        self._limits = limits
        fd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self._out = os.fdopen(fd, "wb")
        self._dec = self._new()
        self._taken = 0

    def _new(self) -> Decryptor:
        f = self._f
        return new_decryptor(f["schema"], f["key"], f["iv"], self._out,
                             expected_cmac=f["cmac"], limits=self._limits)  # fmt: skip

    def get_buffer(self) -> memoryview:
        return self._dec.get_buffer()

    def buffer_updated(self, n: int) -> None:
        self._taken += n
        self._dec.buffer_updated(n)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        n = self._dec.write(data)
        self._taken += n
        return n

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._taken

    def seek(self, offset: int, whence: int = 0) -> int:
        if (offset, whence) != (0, 0):
            raise io.UnsupportedOperation("a decrypting sink can only restart from 0")
        if self._taken == 0:
            return 0  # the first attempt: nothing to undo
        self._out.seek(0)
        self._out.truncate()
        self._dec = self._new()
        self._taken = 0
        return 0

    def truncate(self, size: int | None = None) -> int:
        return self._taken  # seek(0) already dropped everything

    def finish(self) -> None:
        """Complete the verification (raises ``CryptoError``) and close the plaintext."""
        self._dec.finish()
        self._out.close()

    def discard(self) -> None:
        """Close and delete the plaintext (after any failure)."""
        try:
            self._out.close()
        except OSError:
            pass
        self._path.unlink(missing_ok=True)


def _file_name(url: str) -> str:
    """The URL's last path segment: teaclave-file-128 embeds it (spec §5.1)."""
    return urlsplit(url).path.rsplit("/", 1)[-1]
