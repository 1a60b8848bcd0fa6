"""Staging a task's files inside the worker (spec §5.1).

Inputs are downloaded as ciphertext through the file agent, checked against
their registered cmac and decrypted into a private temporary area (memory
backed where the system has /dev/shm) that is removed when the task ends.
AES-GCM and confide's streaming format are verified before the function
starts; teaclave-file-128 is verified when the function opens it (spec Q29).
Outputs are written in plaintext by the function, then encrypted with each
output's registered crypto info, uploaded, and their cmacs returned.
"""

from __future__ import annotations

import hmac
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import urlsplit

from ..config import Limits
from ..crypto import CryptoError, decrypt_stream, encrypt_stream
from ..executors import CorruptedInput, FunctionError, InvalidInputName, InvalidOutputName
from .file_agent import FileAgentError

__all__ = ["TRANSFER_FAILED", "FileTransport", "StagedIO", "Stager"]

TRANSFER_FAILED = "ocall error = 1"
_GCM_NAMES = {"aes-gcm-128": "AesGcm128", "aes-gcm-256": "AesGcm256"}
_MISSING_OUTPUT = {
    "teaclave-file-128": "Convert teaclave_file: failed to open src file",
    "aes-gcm-128": "Convert aes-gcm-128: failed to open src file",
    "aes-gcm-256": "Convert aes-gcm-256: failed to open src file",
}


class FileTransport(Protocol):
    """Moves ciphertext between a URL and a local file (the file agent)."""

    def download(self, url: str, dst: BinaryIO, *, max_bytes: int) -> int: ...

    def upload(self, url: str, src: BinaryIO, size: int) -> None: ...


def _private_root() -> str | None:
    shm = Path("/dev/shm")  # noqa: S108 - memory-backed; mkdtemp makes a private 0700 dir
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


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
        """Download every input; verify and decrypt those checked at start."""
        for name, f in self._inputs.items():
            cipher = self._path("cipher", name)
            self._stager.fetch(f["url"], cipher)
            f["_cipher"] = cipher
            if f["schema"] != "teaclave-file-128":
                self._plain[name] = self._stager.decrypt(f, cipher, self._path("plain", name))

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
        work = Path(tempfile.mkdtemp(prefix="confide-task-", dir=_private_root()))
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
        except FileAgentError as e:
            raise FunctionError(TRANSFER_FAILED) from e

    def decrypt(self, f: dict[str, Any], cipher: Path, plain: Path) -> Path:
        schema = f["schema"]
        if schema == "raw":
            return cipher
        label = _GCM_NAMES.get(schema)
        if label is not None:
            size = cipher.stat().st_size
            if size < 16:
                raise FunctionError(f"{label} File, invalid length: {size}")
            with open(cipher, "rb") as src:
                src.seek(-16, os.SEEK_END)
                if not hmac.compare_digest(src.read(16), f["cmac"]):
                    raise FunctionError(f'{label} File, invalid tag: "{cipher}"')
        fd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with open(cipher, "rb") as src, os.fdopen(fd, "wb") as dst:
                decrypt_stream(schema, f["key"], f["iv"], src, dst, expected_cmac=f["cmac"],
                               file_name=_file_name(f["url"]), limits=self._limits)
        except CryptoError as e:
            plain.unlink(missing_ok=True)  # nothing partial is ever handed to a function
            if label is not None:
                raise FunctionError(f'{label} File, invalid tag: "{cipher}"') from e
            raise FunctionError(f'Corrupted input file: "{cipher}"') from e
        return plain

    def seal_and_upload(self, f: dict[str, Any], plain: Path, sealed: Path) -> bytes:
        with open(plain, "rb") as src, open(sealed, "wb") as dst:
            tag = encrypt_stream(f["schema"], f["key"], f["iv"], src, dst,
                                 file_name=_file_name(f["url"]), limits=self._limits)
        try:
            with open(sealed, "rb") as src:
                self._transport.upload(f["url"], src, sealed.stat().st_size)
        except FileAgentError as e:
            raise FunctionError(TRANSFER_FAILED) from e
        return tag


def _file_name(url: str) -> str:
    """The URL's last path segment: teaclave-file-128 embeds it (spec §5.1)."""
    return urlsplit(url).path.rsplit("/", 1)[-1]
