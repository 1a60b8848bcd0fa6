"""The encrypted backup format: a passphrase, argon2id, AES-256-GCM in chunks.

::

    header  magic "confide-backup\\x00\\x01" (16) | salt (16) | argon2id time cost,
            memory KiB, parallelism, chunk size (4 bytes each, big-endian)
            | check (32) = HMAC-SHA256(check key, everything before it)
    chunks  length (4, big-endian) | AES-256-GCM(enc key, nonce, plaintext, aad=header)
            nonce = chunk index (8, big-endian) | 1 on the last chunk, else 0 (4)

argon2id(passphrase, salt) gives 64 bytes: the encryption key and the check
key. The check tells a wrong passphrase from a damaged archive; each chunk's
nonce carries its index and whether it is the last, so a reordered, dropped,
changed or truncated chunk, and data after the last, are refused (the STREAM
construction of Hoang, Reyhanitabar, Rogaway and Vizár). Streaming both ways:
memory stays at one chunk whatever the archive's size.

The header's parameters are the writer's; a reader caps them (``MAX_*``) so a
crafted archive cannot make it allocate gigabytes before the check fails.
"""

from __future__ import annotations

import hmac
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["DEFAULT_KDF", "MAGIC", "ArchiveError", "ArchiveReader", "ArchiveWriter",
           "DamagedArchive", "Kdf", "NotAnArchive", "TruncatedArchive", "WrongPassphrase"]

MAGIC = b"confide-backup\x00\x01"
_PARAMS = struct.Struct(">IIII")
_LENGTH = struct.Struct(">I")
_SALT = 16
_CHECK = 32
_TAG = 16
HEADER_SIZE = len(MAGIC) + _SALT + _PARAMS.size + _CHECK
CHUNK = 1 << 20
MAX_CHUNK = 16 << 20
MAX_TIME_COST = 16
MAX_MEMORY_KIB = 1 << 20  # 1 GiB
MAX_PARALLELISM = 16


class ArchiveError(Exception):
    """The archive cannot be read: the message says why."""


class NotAnArchive(ArchiveError):
    pass


class WrongPassphrase(ArchiveError):
    pass


class DamagedArchive(ArchiveError):
    pass


class TruncatedArchive(ArchiveError):
    pass


@dataclass(frozen=True)
class Kdf:
    """argon2id's costs (the defaults: RFC 9106's second recommendation, 64 MiB)."""

    time_cost: int = 3
    memory_kib: int = 65536
    parallelism: int = 4

    def keys(self, passphrase: bytes, salt: bytes) -> tuple[bytes, bytes]:
        raw = hash_secret_raw(passphrase, salt, time_cost=self.time_cost,
                              memory_cost=self.memory_kib, parallelism=self.parallelism,
                              hash_len=64, type=Type.ID)
        return raw[:32], raw[32:]


DEFAULT_KDF = Kdf()


def _nonce(index: int, last: bool) -> bytes:
    return struct.pack(">QI", index, 1 if last else 0)


class ArchiveWriter:
    """A write-only stream: ``write`` plaintext, ``close`` to end the archive."""

    def __init__(self, out: BinaryIO, passphrase: bytes, *, kdf: Kdf = DEFAULT_KDF,
                 chunk: int = CHUNK) -> None:
        if not 0 < chunk <= MAX_CHUNK:
            raise ValueError(f"chunk size must be 1..{MAX_CHUNK}")
        salt = os.urandom(_SALT)
        enc, check = kdf.keys(passphrase, salt)
        head = MAGIC + salt + _PARAMS.pack(kdf.time_cost, kdf.memory_kib, kdf.parallelism, chunk)
        self._header = head + hmac.digest(check, head, "sha256")
        self._aead = AESGCM(enc)
        self._out = out
        self._chunk = chunk
        self._buffer = bytearray()
        self._index = 0
        self._closed = False
        out.write(self._header)

    def _emit(self, data: bytes, last: bool) -> None:
        sealed = self._aead.encrypt(_nonce(self._index, last), data, self._header)
        self._out.write(_LENGTH.pack(len(sealed)) + sealed)
        self._index += 1

    def write(self, data: bytes) -> int:
        if self._closed:
            raise ValueError("archive closed")
        self._buffer += data
        while len(self._buffer) > self._chunk:  # keep at least one byte back for the last
            self._emit(bytes(self._buffer[:self._chunk]), False)
            del self._buffer[:self._chunk]
        return len(data)

    def close(self) -> None:
        if not self._closed:
            self._emit(bytes(self._buffer), True)
            self._buffer.clear()
            self._closed = True


class ArchiveReader:
    """A read-only stream of the plaintext; every chunk authenticated before it is given out."""

    def __init__(self, src: BinaryIO, passphrase: bytes) -> None:
        self._src = src
        header = src.read(HEADER_SIZE)
        if len(header) < len(MAGIC) or header[:len(MAGIC)] != MAGIC:
            raise NotAnArchive("not a confide backup (no confide-backup header)")
        if len(header) < HEADER_SIZE:
            raise TruncatedArchive("the archive is truncated: its header is incomplete")
        salt = header[len(MAGIC):len(MAGIC) + _SALT]
        t, m, p, chunk = _PARAMS.unpack_from(header, len(MAGIC) + _SALT)
        if not (1 <= t <= MAX_TIME_COST and 8 * p <= m <= MAX_MEMORY_KIB
                and 1 <= p <= MAX_PARALLELISM and 0 < chunk <= MAX_CHUNK):
            raise DamagedArchive(f"the archive header is damaged: argon2id t={t} m={m} KiB "
                                 f"p={p}, chunk {chunk} out of bounds")
        enc, check = Kdf(t, m, p).keys(passphrase, salt)
        head = header[:-_CHECK]
        if not hmac.compare_digest(hmac.digest(check, head, "sha256"), header[-_CHECK:]):
            raise WrongPassphrase("wrong passphrase (or the archive's header was changed)")
        self._header = header
        self._aead = AESGCM(enc)
        self._max = chunk + _TAG
        self._index = 0
        self._done = False
        self._plain = b""
        self._offset = 0

    def _exactly(self, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            more = self._src.read(n - len(data))
            if not more:
                raise TruncatedArchive("the archive is truncated: it ends before its last chunk")
            data += more
        return bytes(data)

    def _next(self) -> bool:
        if self._done:
            return False
        (length,) = _LENGTH.unpack(self._exactly(_LENGTH.size))
        if not _TAG <= length <= self._max:
            raise DamagedArchive(f"the archive is damaged: chunk {self._index} claims "
                                 f"{length} bytes")
        sealed = self._exactly(length)
        for last in (False, True):
            try:
                self._plain = self._aead.decrypt(_nonce(self._index, last), sealed,
                                                 self._header)
            except InvalidTag:
                continue
            self._offset, self._index, self._done = 0, self._index + 1, last
            if last and self._src.read(1):
                raise DamagedArchive("the archive is damaged: data after its last chunk")
            return True
        raise DamagedArchive(f"the archive is damaged or was tampered with: chunk "
                             f"{self._index} does not authenticate")

    def read(self, n: int = -1) -> bytes:
        out = bytearray()
        while n < 0 or len(out) < n:
            if self._offset >= len(self._plain) and not self._next():
                break
            take = len(self._plain) - self._offset if n < 0 else min(
                n - len(out), len(self._plain) - self._offset)
            out += self._plain[self._offset:self._offset + take]
            self._offset += take
        return bytes(out)

    def finish(self) -> None:
        """Read to the end: the last chunk must be there (and nothing after it)."""
        while self._next():
            pass
