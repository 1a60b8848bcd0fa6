"""``file://``, ``fusion://`` and ``data:`` transfers.

Paths are never resolved by the kernel from a string: each component is
opened relative to the previous directory's descriptor with ``O_NOFOLLOW``
(an ``openat`` walk), so ``..`` cannot appear (it is refused before the walk)
and a symbolic link anywhere below the root — even one that points inside it —
stops the walk. Uploads are written to a private temporary name and linked to
their final name with ``linkat``, which fails if the name exists: an existing
file is never overwritten and a reader never sees a partial file.
"""

from __future__ import annotations

import base64
import binascii
import errno
import os
import secrets
import stat
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from ._errors import AlreadyExists, InvalidUrl, PolicyViolation, TooLarge, TransferFailed
from ._stream import CHUNK_BYTES, ShortSource, Writer, read_exactly

__all__ = [
    "FUSION_PREFIX",
    "LocalStore",
    "decode_data_url",
    "file_url_path",
    "fusion_url_path",
]

FUSION_PREFIX = "fusion:///TEACLAVE_FUSION_BASE/"
DATA_PREFIX = "text/plain;base64,"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _components(url: str, raw_path: str) -> list[str]:
    """Percent-decode a URL path and split it into checked components."""
    try:
        path = unquote(raw_path, errors="strict")
    except UnicodeDecodeError as e:
        raise InvalidUrl(url, "path is not valid UTF-8 after percent-decoding") from e
    if "\x00" in path:
        raise InvalidUrl(url, "path contains a NUL byte")
    parts = path.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise PolicyViolation(url, "path has an empty, '.' or '..' component")
    return parts


def file_url_path(url: str) -> list[str]:
    """Components of the absolute path of ``file:///p`` or ``file://localhost/p``."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise InvalidUrl(url, f"file URL with a remote host {parts.netloc!r}")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise InvalidUrl(url, "file URL with a query or fragment")
    if not parts.path.startswith("/"):
        raise InvalidUrl(url, "file URL path is not absolute")
    return _components(url, parts.path[1:])


def fusion_url_path(url: str) -> list[str]:
    """Components of ``<rel>`` in ``fusion:///TEACLAVE_FUSION_BASE/<rel>``."""
    normalised = "fusion:" + url[len("fusion:") :]  # the scheme is case-insensitive
    if not normalised.startswith(FUSION_PREFIX):
        raise InvalidUrl(url, f"fusion URL must start with {FUSION_PREFIX!r}")
    if "?" in url or "#" in url:
        raise InvalidUrl(url, "fusion URL with a query or fragment")
    return _components(url, url[len(FUSION_PREFIX) :])


def decode_data_url(url: str, max_bytes: int) -> bytes:
    """Decode ``data:text/plain;base64,<b64>``, the only form Teaclave accepts.

    Raises:
        PolicyViolation: another media type or encoding.
        TooLarge: the decoded payload would exceed ``max_bytes``.
        InvalidUrl: the payload is not canonical padded base64.
    """
    rest = url[5:]
    if not rest.startswith(DATA_PREFIX):
        raise PolicyViolation(url, f"only data:{DATA_PREFIX} URLs are accepted")
    payload = rest[len(DATA_PREFIX) :]
    if len(payload) // 4 * 3 > max_bytes + 2:
        raise TooLarge(url, f"data URL payload exceeds the cap of {max_bytes} bytes")
    try:
        data = base64.b64decode(payload, validate=True)
    except binascii.Error as e:
        raise InvalidUrl(url, f"data URL payload is not valid base64: {e}") from e
    if len(data) > max_bytes:
        raise TooLarge(url, f"data URL payload exceeds the cap of {max_bytes} bytes")
    return data


def _walk_error(url: str, e: OSError) -> Exception:
    if e.errno in (errno.ELOOP, errno.ENOTDIR):
        return PolicyViolation(url, "path runs through a symbolic link or non-directory")
    if e.errno == errno.ENOENT:
        return TransferFailed(url, "no such file or directory")
    return TransferFailed(url, f"cannot open: {e.strerror}")


class LocalStore:
    """Reads and write-once writes below one root directory.

    Args:
        root: an absolute directory path, already resolved with
            ``os.path.realpath`` (symbolic links *in* the root path are fine).
        create_dirs: create missing intermediate directories on upload
            (the fusion store does; ``file://`` targets must exist).
    """

    def __init__(self, root: str, *, create_dirs: bool) -> None:
        self.root = root
        self._create_dirs = create_dirs

    def _open_parent(self, url: str, parts: list[str], *, create: bool) -> int:
        try:
            fd = os.open(self.root, _DIR_FLAGS)
        except OSError as e:
            raise TransferFailed(url, f"root directory unavailable: {e.strerror}") from e
        try:
            for part in parts[:-1]:
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    try:
                        os.mkdir(part, 0o700, dir_fd=fd)
                    except FileExistsError:
                        pass
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
        except OSError as e:
            os.close(fd)
            raise _walk_error(url, e) from e
        return fd

    def read(self, url: str, parts: list[str], dst: Writer, max_bytes: int) -> int:
        """Copy the regular file at ``parts`` below the root to ``dst``; return its size."""
        parent = self._open_parent(url, parts, create=False)
        try:
            fd = os.open(
                parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=parent
            )
        except OSError as e:
            raise _walk_error(url, e) from e
        finally:
            os.close(parent)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise PolicyViolation(url, "not a regular file")
        with os.fdopen(fd, "rb", buffering=0) as f:
            if info.st_size > max_bytes:
                raise TooLarge(
                    url, f"file has {info.st_size} bytes, more than the cap of {max_bytes}"
                )
            total = 0
            try:
                while chunk := f.read(CHUNK_BYTES):
                    total += len(chunk)
                    if total > max_bytes:
                        raise TooLarge(url, f"file grew past the cap of {max_bytes} bytes")
                    dst.write(chunk)
            except OSError as e:
                raise TransferFailed(url, f"read or write failed: {e.strerror}") from e
        return total

    def write(self, url: str, parts: list[str], src: BinaryIO, size: int) -> None:
        """Create ``parts`` below the root with the next ``size`` bytes of ``src``.

        Raises:
            AlreadyExists: the target exists (checked first and again atomically).
        """
        parent = self._open_parent(url, parts, create=self._create_dirs)
        name = parts[-1]
        tmp = f".confide-upload-{secrets.token_hex(8)}.part"
        try:
            try:
                os.stat(name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                pass
            else:
                raise AlreadyExists(url, "target exists; uploads never overwrite")
            self._write_new(url, parent, tmp, src, size)
            try:
                os.link(tmp, name, src_dir_fd=parent, dst_dir_fd=parent, follow_symlinks=False)
            except FileExistsError as e:
                raise AlreadyExists(url, "target exists; uploads never overwrite") from e
            except OSError as e:
                raise TransferFailed(url, f"cannot create target: {e.strerror}") from e
        finally:
            try:
                os.unlink(tmp, dir_fd=parent)
            except FileNotFoundError:
                pass
            os.close(parent)

    @staticmethod
    def _write_new(url: str, parent: int, tmp: str, src: BinaryIO, size: int) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(tmp, flags, 0o600, dir_fd=parent)
        except OSError as e:
            raise TransferFailed(url, f"cannot create file: {e.strerror}") from e
        with os.fdopen(fd, "wb") as out:
            try:
                for chunk in read_exactly(src, size):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            except ShortSource as e:
                raise TransferFailed(url, str(e)) from e
            except OSError as e:
                raise TransferFailed(url, f"write failed: {e.strerror}") from e
