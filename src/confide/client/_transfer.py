"""Moving ciphertext in bounded memory: encrypt while uploading, decrypt while downloading.

Upload: the file is encrypted in a producer thread into a small bounded queue
that the HTTP request body drains, so at most a few segments are in memory and
encryption overlaps the network; the ``Content-Length`` is known beforehand
from the plaintext size (``crypto.encrypted_size``). ``teaclave-file-128``,
whose writer seeks back, goes through a temporary file instead.

Download: the response body is pushed into a verifying decryptor
(``crypto.new_decryptor``) that writes plaintext to a private temporary file
next to the destination; only when the cmac verified is it renamed over the
destination, so a tampered or truncated download never leaves plaintext
behind. ``teaclave-file-128`` (random access) is fetched to a temporary file
first and then decrypted.

Both accept a ``progress(n)`` callback, called with the ciphertext bytes moved.
"""

from __future__ import annotations

import contextlib
import os
import queue
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import httpx

from .._atomic import atomic_writer
from ..crypto import (
    PUSH_SCHEMAS,
    CryptoError,
    decrypt_stream,
    encrypt_stream,
    encrypted_size,
    new_decryptor,
)
from ._errors import ClientError

__all__ = ["Progress", "download_decrypt", "upload_encrypt"]

Progress = Callable[[int], None]
_QUEUE_SEGMENTS = 4  # ciphertext chunks in flight between the encryptor and the socket
_READ_CHUNK = 1 << 20
_DONE = object()


class _Aborted(Exception):
    """The upload stopped (the server answered early or the caller gave up)."""


class _QueueWriter:
    """A write-only file whose writes go into a bounded queue (copied: callers reuse buffers)."""

    def __init__(self, q: queue.Queue[object], stop: threading.Event) -> None:
        self._q = q
        self._stop = stop
        self.written = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        chunk = bytes(data)
        while True:
            if self._stop.is_set():
                raise _Aborted()
            try:
                self._q.put(chunk, timeout=0.2)
                break
            except queue.Full:
                continue
        self.written += len(chunk)
        return len(chunk)

    def flush(self) -> None:
        return None


def _timeout(timeout: float) -> httpx.Timeout:
    # ``timeout`` bounds each socket operation, not the whole transfer.
    return httpx.Timeout(timeout, connect=min(timeout, 30.0))


def upload_encrypt(src: Path, put_url: str, *, schema: str, key: bytes, iv: bytes,
                   file_name: str, timeout: float, progress: Progress | None = None) -> bytes:
    """Encrypt ``src`` and PUT the ciphertext to ``put_url`` as it is made; the cmac.

    Raises:
        ClientError: ``UNAVAILABLE`` (the upload failed, with the HTTP status),
            ``INVALID_ARGUMENT`` (bad key/IV/schema) or ``ABORTED`` (``src``
            changed size while it was read).
    """
    size = os.stat(src).st_size
    expected = encrypted_size(schema, size)
    if expected is None:
        return _upload_via_temporary(src, put_url, schema=schema, key=key, iv=iv,
                                     file_name=file_name, timeout=timeout, progress=progress)
    chunks: queue.Queue[object] = queue.Queue(maxsize=_QUEUE_SEGMENTS)
    stop = threading.Event()
    sink = _QueueWriter(chunks, stop)
    outcome: list[object] = []

    def produce() -> None:
        try:
            with open(src, "rb") as f:
                outcome.append(encrypt_stream(schema, key, iv, f, sink,  # type: ignore[arg-type]
                                              file_name=file_name))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer thread
            outcome.append(e)
        finally:
            while not stop.is_set():  # tell the consumer, unless it has stopped already
                try:
                    chunks.put(_DONE, timeout=0.2)
                    break
                except queue.Full:
                    continue

    def body() -> Iterator[bytes]:
        while True:
            item = chunks.get()
            if item is _DONE:
                return
            data = item if isinstance(item, bytes) else b""
            yield data
            if progress is not None:
                progress(len(data))

    producer = threading.Thread(target=produce, name="encrypt", daemon=True)
    producer.start()
    try:
        headers = {"Content-Type": "application/x-binary", "Content-Length": str(expected)}
        with httpx.Client(timeout=_timeout(timeout)) as http:
            resp = http.put(put_url, content=body(), headers=headers)
    except httpx.HTTPError as e:
        stop.set()
        producer.join()
        _raise_from_producer(outcome)
        if sink.written > expected:  # it grew; fewer bytes: the upload stopped first
            _check_size(src, sink.written, expected)
        raise ClientError("UNAVAILABLE", f"upload failed: {e}") from e
    finally:
        stop.set()
        producer.join()
    _raise_from_producer(outcome)
    _check_size(src, sink.written, expected)
    _check_status(resp, "upload")
    cmac = outcome[0]
    if not isinstance(cmac, bytes):  # pragma: no cover - produce() appends bytes or an error
        raise ClientError("INTERNAL", "encryption gave no cmac")
    return cmac


def _check_size(src: Path, written: int, expected: int) -> None:
    if written != expected:
        raise ClientError("ABORTED", f"{src} changed while it was encrypted "
                                     f"({written} bytes instead of {expected})")


def _raise_from_producer(outcome: list[object]) -> None:
    if outcome and isinstance(outcome[0], BaseException) and not isinstance(outcome[0], _Aborted):
        error = outcome[0]
        if isinstance(error, CryptoError):
            raise ClientError("INVALID_ARGUMENT", f"cannot encrypt: {error}") from error
        if isinstance(error, OSError):
            raise ClientError("INVALID_ARGUMENT", f"cannot read the file: {error}") from error
        raise error


def _upload_via_temporary(src: Path, put_url: str, *, schema: str, key: bytes, iv: bytes,
                          file_name: str, timeout: float, progress: Progress | None) -> bytes:
    with tempfile.TemporaryFile() as sealed:
        try:
            with open(src, "rb") as f:
                cmac = encrypt_stream(schema, key, iv, f, sealed, file_name=file_name)
        except CryptoError as e:
            raise ClientError("INVALID_ARGUMENT", f"cannot encrypt: {e}") from e
        size = sealed.tell()
        sealed.seek(0)
        put_file(put_url, sealed, size, timeout=timeout, progress=progress)
    return cmac


def put_file(url: str, body: BinaryIO, size: int, *, timeout: float,
             progress: Progress | None = None) -> None:
    """PUT ``size`` bytes read from ``body`` (streamed in 1 MiB chunks)."""
    def chunks() -> Iterator[bytes]:
        while chunk := body.read(_READ_CHUNK):
            yield chunk
            if progress is not None:
                progress(len(chunk))

    headers = {"Content-Type": "application/x-binary", "Content-Length": str(size)}
    try:
        with httpx.Client(timeout=_timeout(timeout)) as http:
            resp = http.put(url, content=chunks(), headers=headers)
    except httpx.HTTPError as e:
        raise ClientError("UNAVAILABLE", f"upload failed: {e}") from e
    _check_status(resp, "upload")


def _check_status(resp: httpx.Response, what: str) -> None:
    if resp.status_code not in (200, 201, 204):
        text = resp.text[:200].strip() if resp.headers.get("content-type", "").startswith(
            "text") else ""
        raise ClientError("UNAVAILABLE", f"{what} failed: HTTP {resp.status_code}"
                          + (f" ({text})" if text else ""))


def download_decrypt(url: str, dst: Path, *, schema: str, key: bytes, iv: bytes,
                     cmac: bytes | None, file_name: str, timeout: float,
                     progress: Progress | None = None) -> bytes:
    """GET ``url``, verify and decrypt it into ``dst`` (replaced only on success); the cmac.

    Raises:
        ClientError: ``UNAVAILABLE`` (the download failed), ``DATA_LOSS`` (the
            ciphertext does not verify, or is not the one registered).
    """
    with atomic_writer(dst) as out:
        if schema in PUSH_SCHEMAS:
            return _stream_into(url, out, schema=schema, key=key, iv=iv, cmac=cmac,
                                timeout=timeout, progress=progress)
        return _fetch_then_decrypt(url, out, schema=schema, key=key, iv=iv, cmac=cmac,
                                   file_name=file_name, timeout=timeout, progress=progress)


def _get(http: httpx.Client, url: str) -> contextlib.AbstractContextManager[httpx.Response]:
    return http.stream("GET", url)


def _stream_into(url: str, out: BinaryIO, *, schema: str, key: bytes, iv: bytes,
                 cmac: bytes | None, timeout: float, progress: Progress | None) -> bytes:
    try:
        decryptor = new_decryptor(schema, key, iv, out, expected_cmac=cmac)
    except CryptoError as e:
        raise ClientError("INVALID_ARGUMENT", f"cannot decrypt: {e}") from e
    try:
        with httpx.Client(timeout=_timeout(timeout)) as http, _get(http, url) as resp:
            _check_status(resp, "download")
            for chunk in resp.iter_raw():
                decryptor.write(chunk)
                if progress is not None:
                    progress(len(chunk))
        return decryptor.finish()
    except CryptoError as e:
        raise ClientError("DATA_LOSS", f"the download does not verify: {e}") from e
    except httpx.HTTPError as e:
        raise ClientError("UNAVAILABLE", f"download failed: {e}") from e


def _fetch_then_decrypt(url: str, out: BinaryIO, *, schema: str, key: bytes, iv: bytes,
                        cmac: bytes | None, file_name: str, timeout: float,
                        progress: Progress | None) -> bytes:
    with tempfile.TemporaryFile() as sealed:
        try:
            with httpx.Client(timeout=_timeout(timeout)) as http, _get(http, url) as resp:
                _check_status(resp, "download")
                for chunk in resp.iter_raw():
                    sealed.write(chunk)
                    if progress is not None:
                        progress(len(chunk))
        except httpx.HTTPError as e:
            raise ClientError("UNAVAILABLE", f"download failed: {e}") from e
        sealed.seek(0)
        try:
            return decrypt_stream(schema, key, iv, sealed, out, expected_cmac=cmac,
                                  file_name=file_name)
        except CryptoError as e:
            raise ClientError("DATA_LOSS", f"the download does not verify: {e}") from e
