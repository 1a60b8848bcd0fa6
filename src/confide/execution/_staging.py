"""Staging a task's files inside the worker (spec §5.1).

Inputs are fetched through the file agent into a private temporary area
(memory backed where the system has /dev/shm) that is removed when the task
ends. AES-GCM and confide's streaming format are decrypted *while they
download*, in one pass: the file agent receives the body straight into the
buffer of a :class:`DecryptingSink`, which verifies and writes plaintext into
the private area; the file counts only once the whole body arrived, the tag
or cmac matched the registered one and GCM verified -- otherwise the partial
plaintext is deleted before anything else happens. teaclave-file-128 is
decrypted while it downloads too (file order: each MHT node precedes its data
nodes), but a file that fails its integrity check is reported only when the
function opens it (spec Q29), as Teaclave does; its plaintext is removed at
once. raw is downloaded to a file as it is. Every staged plaintext is a
seekable file: random access works on all of them.
Outputs are written in plaintext by the function, then encrypted with each
output's registered crypto info, uploaded, and their cmacs returned.

Caps (``Limits``, docs/operations.md): the bytes received for all inputs of a
task are capped by ``max_input_bytes`` -- each download is given what is left
as its maximum, so the file agent stops at the first byte past it -- and
everything the task holds in its private area at once by
``max_task_area_bytes`` (:mod:`._area`: charged before each write). Past
either, staging or the run fails with :class:`~confide.executors.CapExceeded`;
the area is removed whatever happens and nothing is uploaded unless every
output is ready.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol, cast
from urllib.parse import urlsplit

from ..config import Limits
from ..crypto import (
    PUSH_SCHEMAS,
    CryptoError,
    encrypt_stream,
)
from ..executors import (
    CapExceeded,
    CorruptedInput,
    FunctionError,
    InvalidInputName,
    InvalidOutputName,
)
from ..staged import StagedFile
from ..telemetry._metrics import WORKER_STAGED_BYTES
from ._area import AreaBudget, MeteredFile, remove_file
from ._decrypting_sink import DecryptingSink
from .file_agent import BufferedDestination, FileAgentError, TooLarge

__all__ = [
    "TRANSFER_FAILED",
    "Allowance",
    "Fetched",
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


@dataclass(frozen=True)
class Fetched:
    """A teaclave-file-128 input after download: what it cost and, if it failed
    its integrity check, the error its opening raises."""

    received: int
    corrupted: CorruptedInput | None


@dataclass(frozen=True)
class Allowance:
    """How many bytes one download may bring, and the cap that sets it."""

    max_bytes: int
    cap: CapExceeded  # raised when the body is larger


class StagedIO:
    """The :class:`~confide.executors.TaskIO` of one task."""

    def __init__(self, work: Path, inputs: Sequence[StagedFile], outputs: Sequence[StagedFile],
                 stager: Stager, area: AreaBudget) -> None:
        self._work = work
        self._inputs = {f.name: f for f in inputs}
        self._outputs = {f.name: f for f in outputs}
        # teaclave-file-128 inputs that failed their check: raised when opened (Q29)
        self._corrupted: dict[str, CorruptedInput] = {}
        self._stager = stager
        self._area = area
        self._input_cap = stager.limits.max_input_bytes
        self._received = 0  # bytes received for inputs so far
        self._plain: dict[str, Path] = {}
        self._written: set[str] = set()

    @property
    def area(self) -> AreaBudget:
        return self._area

    def _allowance(self) -> Allowance:
        """What the next input may bring: the smaller of what is left of the
        input cap and of the area."""
        left = self._input_cap - self._received
        if left <= self._area.remaining:
            return Allowance(left, CapExceeded("inputs", "max_input_bytes", self._input_cap,
                                               plural=True))
        return Allowance(self._area.remaining,
                         CapExceeded("the task's private area", "max_task_area_bytes",
                                     self._area.cap))

    def input_names(self) -> list[str]:
        return sorted(self._inputs)

    def output_names(self) -> list[str]:
        return sorted(self._outputs)

    def _path(self, kind: str, name: str) -> Path:
        return self._work / f"{kind}-{len(self._plain) + len(self._written)}-{os.urandom(4).hex()}"

    def prepare(self) -> None:
        """Fetch every input; all but raw are verified and decrypted while they
        download (a teaclave-file-128 input that fails is reported when opened).

        Raises:
            CapExceeded: the inputs go past ``max_input_bytes`` or the area past
                ``max_task_area_bytes`` (found while receiving, not after).
        """
        for name, f in self._inputs.items():
            allowance = self._allowance()
            plain = self._path("plain", name)
            if f.schema in PUSH_SCHEMAS:
                self._received += self._stager.fetch_decrypted(f, plain, allowance=allowance,
                                                               area=self._area)
                self._plain[name] = plain
            elif f.schema == "teaclave-file-128":
                fetched = self._stager.fetch_decrypted_or_corrupt(
                    f, plain, allowance=allowance, area=self._area)
                self._received += fetched.received
                if fetched.corrupted is None:
                    self._plain[name] = plain
                else:
                    self._corrupted[name] = fetched.corrupted
            else:
                self._received += self._stager.fetch(f.url, plain, allowance=allowance,
                                                     area=self._area)
                self._plain[name] = plain

    def open_input(self, name: str) -> BinaryIO:
        f = self._inputs.get(name)
        if f is None:
            raise InvalidInputName(name)
        corrupted = self._corrupted.get(name)
        if corrupted is not None:
            raise corrupted
        return open(self._plain[name], "rb")

    def create_output(self, name: str) -> BinaryIO:
        """Create (truncate) an output; its bytes are charged to the area as they
        are written (a re-created file gives nothing back)."""
        if name not in self._outputs:
            raise InvalidOutputName(name)
        self._written.add(name)
        fd = os.open(self._output_path(name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        return cast(BinaryIO, MeteredFile(os.fdopen(fd, "wb"), self._area))

    def _output_path(self, name: str) -> Path:
        return self._work / f"out-{name.encode().hex()}"

    def finish(self) -> dict[str, bytes]:
        """Encrypt and upload every assigned output; their cmacs by name.

        Every output is checked before the first is uploaded, so a task with a
        missing output leaves no result behind. The inputs are removed first
        (the function has ended), and each sealed copy once it is uploaded, so
        the area holds the outputs and one sealed copy at most.
        """
        ready: list[tuple[str, StagedFile, Path]] = []
        for name, f in sorted(self._outputs.items()):
            if f.schema == "raw":
                raise FunctionError("OutputFile: unsupported type")
            plain = self._output_path(name)
            if name not in self._written or not plain.exists():
                raise FunctionError(_MISSING_OUTPUT.get(f.schema,
                                                        "failed to open src file"))
            ready.append((name, f, plain))
        self._remove_inputs()
        tags = {}
        for name, f, plain in ready:
            tags[name] = self._stager.seal_and_upload(f, plain, self._path("sealed", name),
                                                      area=self._area)
        return tags

    def _remove_inputs(self) -> None:
        for path in self._plain.values():
            remove_file(path, self._area)
        self._plain.clear()


class Stager:
    """Creates each task's private area and moves its files in and out."""

    def __init__(self, transport: FileTransport, limits: Limits, *,
                 write_behind: bool = True) -> None:
        """``write_behind``: decrypt teaclave-file-128 inputs with their writes on a
        helper thread (:func:`~confide.crypto.new_decryptor`); off when the
        private area is a tmpfs with large pages (``_private_tmpfs``)."""
        self._transport = transport
        self._limits = limits
        self._write_behind = write_behind

    @property
    def limits(self) -> Limits:
        return self._limits

    @contextmanager
    def stage(self, task_id: str, inputs: Sequence[StagedFile],
              outputs: Sequence[StagedFile]) -> Iterator[StagedIO]:
        area = private_area(os.getpid())
        area.mkdir(mode=0o700, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="task-", dir=area))
        try:
            io = StagedIO(work, inputs, outputs, self,
                          AreaBudget(self._limits.max_task_area_bytes))
            io.prepare()
            yield io
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _download(self, url: str, dst: BinaryIO | BufferedDestination,
                  allowance: Allowance | None) -> int:
        cap = self._limits.max_download_bytes
        if allowance is not None and allowance.max_bytes < cap:
            cap = max(0, allowance.max_bytes)
        else:
            allowance = None  # the file agent's own ceiling is the smaller one
        try:
            received = self._transport.download(url, dst, max_bytes=cap)
            _STAGED_IN.inc(received)
            return received
        except TooLarge as e:
            if allowance is not None:
                raise allowance.cap from e
            raise FunctionError(TRANSFER_FAILED) from e
        except FileAgentError as e:
            raise FunctionError(TRANSFER_FAILED) from e

    def fetch(self, url: str, dst: Path, *, allowance: Allowance | None = None,
              area: AreaBudget | None = None) -> int:
        """Download ``url`` to ``dst`` as it is; the number of bytes received.

        Raises:
            CapExceeded: more than ``allowance`` allows (the file is removed).
            FunctionError: ``TRANSFER_FAILED``.
        """
        try:
            with open(dst, "wb") as raw:
                out: Any = raw if area is None else MeteredFile(raw, area)
                return self._download(url, out, allowance)
        except BaseException:
            remove_file(dst, area)
            raise

    def fetch_decrypted(self, f: StagedFile, plain: Path, *,
                        allowance: Allowance | None = None,
                        area: AreaBudget | None = None) -> int:
        """Download, verify and decrypt an aes-gcm or confide-stream-256 input in one pass;
        the number of bytes received.

        Nothing is left at ``plain`` unless the whole file verified against its
        registered cmac. Errors are Teaclave's, naming the staged file.

        Raises:
            CapExceeded: more than ``allowance`` allows.
            FunctionError: a transfer failure or a file that does not verify.
        """
        sink = DecryptingSink(f, plain, self._limits, area)
        label = _GCM_NAMES.get(f.schema)
        try:
            self._download(f.url, sink, allowance)
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
        return sink.tell()

    def fetch_decrypted_or_corrupt(self, f: StagedFile, plain: Path, *,
                                   allowance: Allowance | None = None,
                                   area: AreaBudget | None = None) -> Fetched:
        """Download, verify and decrypt a teaclave-file-128 input in one pass; the
        bytes received and, if the file failed its integrity check, the error to
        raise when the function opens it (spec Q29: Teaclave checks a protected
        file when it is opened, so an input never opened may be corrupt).

        Nothing is left at ``plain`` unless the whole file verified.

        Raises:
            CapExceeded: more than ``allowance`` allows.
            FunctionError: a transfer failure.
        """
        sink = DecryptingSink(f, plain, self._limits, area, file_name=_file_name(f.url),
                              write_behind=self._write_behind)  # fmt: skip
        try:
            self._download(f.url, sink, allowance)
            sink.finish()
        except CryptoError as e:
            sink.discard()
            corrupted = CorruptedInput(f.name, str(plain))
            corrupted.__cause__ = e
            return Fetched(sink.tell(), corrupted)
        except BaseException:
            sink.discard()
            raise
        return Fetched(sink.tell(), None)

    def seal_and_upload(self, f: StagedFile, plain: Path, sealed: Path, *,
                        area: AreaBudget | None = None) -> bytes:
        """Encrypt ``plain`` to ``sealed``, upload it, then remove both; the cmac."""
        try:
            with open(plain, "rb") as src, open(sealed, "wb") as raw:
                dst: Any = raw if area is None else MeteredFile(raw, area)
                tag = encrypt_stream(f.schema, f.key, f.iv, src, dst,
                                     file_name=_file_name(f.url), limits=self._limits)
            try:
                size = sealed.stat().st_size
                with open(sealed, "rb") as src:
                    self._transport.upload(f.url, src, size)
                _STAGED_OUT.inc(size)
            except FileAgentError as e:
                raise FunctionError(TRANSFER_FAILED) from e
        finally:
            remove_file(sealed, area)
            remove_file(plain, area)
        return tag


def _file_name(url: str) -> str:
    """The URL's last path segment: teaclave-file-128 embeds it (spec §5.1)."""
    return urlsplit(url).path.rsplit("/", 1)[-1]
