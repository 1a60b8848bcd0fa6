"""``confide-stream-256``: confide's segmented streaming AEAD format.

The construction is Tink's AES-GCM-HKDF streaming AEAD (the "STREAM" online
AE scheme of Hoang, Reyhanitabar, Rogaway and Vizár, CRYPTO 2015, instantiated
with AES-256-GCM); ``docs/file-formats.md`` gives the byte layout and the
security argument. Summary::

    header  = "CNFS" ‖ 0x01 ‖ 0x000000 ‖ u32be(segment_size) ‖ salt[32] ‖ prefix[7] ‖ 0x00
    k_file  = HKDF-SHA256(ikm=key, salt=salt, info=INFO ‖ header[0:12] ‖ prefix, L=32)
    nonce_i = prefix ‖ u32be(i) ‖ (0x01 if i is the last segment else 0x00)
    seg_i   = AES-256-GCM(k_file, nonce_i, plaintext_i, aad="")  (ciphertext ‖ tag_i)
    cmac    = SHA-256(header ‖ tag_0 ‖ … ‖ tag_last)[0:16]

Every segment but the last holds exactly ``segment_size`` plaintext bytes; the
last holds 1..segment_size (0 only when the whole plaintext is empty).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import BinaryIO, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..config import Limits
from ._errors import CryptoLimitError, IntegrityError
from ._io import ByteCounter, Decryptor, Progress, Rng, read_exact, read_full

__all__ = [
    "DEFAULT_SEGMENT",
    "HEADER_LENGTH",
    "MIN_SEGMENT",
    "TAG_LENGTH",
    "StreamDecryptor",
    "cmac_of",
    "decrypt",
    "encrypt",
]

MAGIC: Final = b"CNFS"
VERSION: Final = 1
HEADER_LENGTH: Final = 52
TAG_LENGTH: Final = 16
DEFAULT_SEGMENT: Final = 1 << 20
MIN_SEGMENT: Final = 4096
MAX_SEGMENTS: Final = 1 << 32
_INFO: Final = b"confide-stream-256 v1 file key"
# magic, version, reserved[3], segment_size, salt[32], nonce_prefix[7], reserved
_HEADER = struct.Struct(">4sB3sI32s7sB")


class _Header:
    def __init__(self, raw: bytes, segment_size: int, salt: bytes, prefix: bytes) -> None:
        self.raw = raw
        self.segment_size = segment_size
        self.salt = salt
        self.prefix = prefix

    def file_cipher(self, key: bytes) -> AESGCM:
        info = _INFO + self.raw[:12] + self.prefix
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=self.salt, info=info)
        return AESGCM(hkdf.derive(key))

    def nonce(self, index: int, last: bool) -> bytes:
        return self.prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def _new_header(segment_size: int, rng: Rng) -> _Header:
    salt, prefix = rng(32), rng(7)
    raw = _HEADER.pack(MAGIC, VERSION, bytes(3), segment_size, salt, prefix, 0)
    return _Header(raw, segment_size, salt, prefix)


def _parse_header(unverified: bytes, limits: Limits) -> _Header:
    if len(unverified) < HEADER_LENGTH:
        raise IntegrityError("confide-stream-256: file is shorter than its header")
    magic, version, reserved, segment_size, salt, prefix, reserved2 = _HEADER.unpack(unverified)
    if magic != MAGIC:
        raise IntegrityError("confide-stream-256: bad magic (not a confide stream file)")
    if version != VERSION:
        raise IntegrityError(f"confide-stream-256: unsupported version {version}")
    if any(reserved) or reserved2:
        raise IntegrityError("confide-stream-256: non-zero reserved header bytes")
    if segment_size > limits.max_stream_segment_bytes:
        raise CryptoLimitError(
            f"confide-stream-256 segment size {segment_size} exceeds "
            f"{limits.max_stream_segment_bytes} bytes"
        )
    if segment_size < MIN_SEGMENT:
        raise IntegrityError(f"confide-stream-256: segment size {segment_size} < {MIN_SEGMENT}")
    return _Header(unverified, segment_size, salt, prefix)


def encrypt(
    key: bytes,
    src: BinaryIO,
    dst: BinaryIO,
    *,
    rng: Rng,
    progress: Progress | None,
    segment_size: int = DEFAULT_SEGMENT,
) -> bytes:
    """Encrypt ``src`` into ``dst``; return the 16-byte cmac."""
    if not MIN_SEGMENT <= segment_size < (1 << 32):
        raise ValueError(f"segment_size must be in [{MIN_SEGMENT}, 2^32)")
    header = _new_header(segment_size, rng)
    cipher = header.file_cipher(key)
    digest = hashlib.sha256(header.raw)
    dst.write(header.raw)
    # Double buffer: a segment is sealed only once we know whether another follows.
    bufs = (bytearray(segment_size), bytearray(segment_size))
    cur = 0
    n = read_full(src, memoryview(bufs[cur]))
    out = bytearray(segment_size + TAG_LENGTH)
    outview = memoryview(out)
    index = 0
    while True:
        nxt = 1 - cur
        m = read_full(src, memoryview(bufs[nxt])) if n == segment_size else 0
        last = m == 0
        if index >= MAX_SEGMENTS:
            raise CryptoLimitError("confide-stream-256: more than 2^32 segments")
        sealed_len = n + TAG_LENGTH
        cipher.encrypt_into(
            header.nonce(index, last), memoryview(bufs[cur])[:n], None, outview[:sealed_len]
        )
        dst.write(outview[:sealed_len])
        digest.update(outview[n:sealed_len])
        if progress is not None and n:
            progress(n)
        if last:
            break
        cur, n, index = nxt, m, index + 1
    return digest.digest()[:16]


class StreamDecryptor(Decryptor):
    """Push-style verification and decryption: feed bytes, then :meth:`finish`.

    Ciphertext is received into two buffers of one sealed segment each. A
    full segment is opened (and its plaintext written to ``dst``) only once
    a byte of the next one has arrived, because the nonce says whether a
    segment is the last; :meth:`finish` opens the final segment and checks
    the cmac. Each segment is authenticated before its plaintext is written,
    so on failure ``dst`` holds an authentic *prefix* of the plaintext;
    callers must still discard it.
    """

    def __init__(
        self, key: bytes, dst: BinaryIO, *, expected_cmac: bytes | None, counter: ByteCounter,
        limits: Limits,
    ) -> None:  # fmt: skip
        self._key = key
        self._dst = dst
        self._expected = expected_cmac
        self._counter = counter
        self._limits = limits
        self._head = bytearray(HEADER_LENGTH)  # the unverified header, until complete
        self._header: _Header | None = None
        self._cipher: AESGCM | None = None
        self._digest = hashlib.sha256()
        self._bufs: tuple[memoryview, memoryview] = (memoryview(self._head),) * 2
        self._out = memoryview(bytearray())
        self._cur = 0
        self._fill = 0
        self._index = 0

    def get_buffer(self) -> memoryview:
        cur = self._bufs[self._cur]
        if self._fill < len(cur):
            return cur[self._fill :]
        return self._bufs[1 - self._cur]  # cur is full: the next segment goes to the other one

    def buffer_updated(self, n: int) -> None:
        if n <= 0:
            return
        self._counter.add(n)
        if self._header is None:
            self._fill += n
            if self._fill == HEADER_LENGTH:
                self._start(bytes(self._head))
            return
        if self._fill < len(self._bufs[self._cur]):
            self._fill += n
            return
        self._open(self._bufs[self._cur], last=False)  # a byte of the next one arrived
        self._cur, self._fill = 1 - self._cur, n

    def _start(self, raw: bytes) -> None:
        header = _parse_header(raw, self._limits)
        chunk = header.segment_size + TAG_LENGTH
        self._header = header
        self._cipher = header.file_cipher(self._key)
        self._digest.update(header.raw)
        self._bufs = (memoryview(bytearray(chunk)), memoryview(bytearray(chunk)))
        self._out = memoryview(bytearray(header.segment_size))
        self._cur, self._fill = 0, 0

    @property
    def segment_size(self) -> int | None:
        """The segment size once the header has been read."""
        return None if self._header is None else self._header.segment_size

    def _open(self, sealed: memoryview, *, last: bool) -> None:
        n, index = len(sealed), self._index
        if self._cipher is None or self._header is None:  # pragma: no cover - guarded by callers
            raise IntegrityError("confide-stream-256: file is shorter than its header")
        if n < TAG_LENGTH or (n == TAG_LENGTH and index > 0):
            raise IntegrityError(f"confide-stream-256: truncated segment {index}")
        if index >= MAX_SEGMENTS:
            raise CryptoLimitError("confide-stream-256: more than 2^32 segments")
        out = self._out[: n - TAG_LENGTH]
        try:
            self._cipher.decrypt_into(self._header.nonce(index, last), sealed, None, out)
        except InvalidTag as e:
            raise IntegrityError(
                f"confide-stream-256: segment {index}{' (last)' if last else ''} does not "
                "verify (wrong key, or modified, reordered, truncated or extended file)"
            ) from e
        self._digest.update(sealed[n - TAG_LENGTH :])
        self._dst.write(out)
        self._index += 1

    def finish(self) -> bytes:
        """Open the last segment, check the cmac; return it.

        Raises:
            IntegrityError: bad or short header, a segment that does not verify
                (wrong key, modified, reordered, truncated or extended file),
                or cmac mismatch. ``dst`` must then be discarded.
            CryptoLimitError: segment size or segment count over a cap.
        """
        if self._header is None:
            raise IntegrityError("confide-stream-256: file is shorter than its header")
        self._open(self._bufs[self._cur][: self._fill], last=True)
        cmac = self._digest.digest()[:16]
        if self._expected is not None and not hmac.compare_digest(cmac, self._expected):
            raise IntegrityError("confide-stream-256: cmac differs from the expected cmac")
        return cmac


def decrypt(
    key: bytes,
    src: BinaryIO,
    dst: BinaryIO,
    *,
    expected_cmac: bytes | None,
    counter: ByteCounter,
    limits: Limits,
) -> bytes:
    """Verify and decrypt segment by segment; return the cmac.

    Each segment is authenticated before its plaintext is written, so on
    failure ``dst`` holds an authentic *prefix* of the plaintext; callers must
    still discard it, as the file as a whole was not accepted.

    Raises:
        IntegrityError: bad header, a segment that does not verify (wrong key,
            modified, reordered, truncated or extended file), or cmac mismatch.
        CryptoLimitError: segment size or file size over a cap.
    """
    dec = StreamDecryptor(key, dst, expected_cmac=expected_cmac, counter=counter, limits=limits)
    dec.drain(src)
    return dec.finish()


def cmac_of(src: BinaryIO, counter: ByteCounter, limits: Limits) -> bytes:
    """Recompute the cmac from the header and the segment tags (no key needed).

    On a seekable source only the tags are read. This does not authenticate
    the file: it tells which ciphertext this is, decryption tells if it is valid.
    """
    raw = read_exact(src, HEADER_LENGTH)
    counter.add(len(raw))
    header = _parse_header(raw, limits)
    digest = hashlib.sha256(header.raw)
    chunk = header.segment_size + TAG_LENGTH
    if src.seekable():
        start = src.tell()
        body = src.seek(0, 2) - start
        counter.check_total(body + len(raw))
        full, rest = divmod(body, chunk)
        if rest == 0 and full:
            full, rest = full - 1, chunk
        if rest < TAG_LENGTH or (rest == TAG_LENGTH and full):
            raise IntegrityError(f"confide-stream-256: truncated segment {full}")
        for i in range(full + 1):
            end = start + min((i + 1) * chunk, body)
            src.seek(end - TAG_LENGTH)
            digest.update(read_exact(src, TAG_LENGTH))
        return digest.digest()[:16]
    buf = bytearray(chunk)
    index = 0
    while True:
        n = read_full(src, memoryview(buf))
        counter.add(n)
        if n == 0 and index > 0:
            break
        if n < TAG_LENGTH or (n == TAG_LENGTH and index > 0):
            raise IntegrityError(f"confide-stream-256: truncated segment {index}")
        digest.update(buf[n - TAG_LENGTH : n])
        index += 1
        if n < chunk:
            break
    return digest.digest()[:16]
