"""Teaclave's ``aes-gcm-128`` / ``aes-gcm-256`` file format, streamed.

A file is ``ciphertext ‖ tag`` (16 bytes), AES-GCM over the whole plaintext with
the registered key and 12-byte IV and **8 zero bytes of associated data**
(Teaclave ``crypto/src/lib.rs``); the tag is the file's cmac.

There is one tag for the whole file, so ``decrypt`` (and the push-style
:class:`Decryptor` it is built on) writes plaintext to ``dst`` before it can
know the file is authentic: the caller must discard ``dst`` unless ``decrypt``
(or ``Decryptor.finish``) returned.
"""

from __future__ import annotations

import hmac
from typing import BinaryIO, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ._errors import CryptoLimitError, IntegrityError
from ._io import ByteCounter, Decryptor, Progress, read_full

__all__ = [
    "AAD",
    "MAX_PLAINTEXT_BYTES",
    "TAG_LENGTH",
    "GcmDecryptor",
    "cmac_of",
    "decrypt",
    "encrypt",
]

AAD: Final = bytes(8)
TAG_LENGTH: Final = 16
#: NIST SP 800-38D limit for one (key, IV): 2^39 - 256 bits.
MAX_PLAINTEXT_BYTES: Final = (1 << 36) - 32
_SEGMENT: Final = 1 << 20
_BLOCK: Final = 16


def encrypt(
    key: bytes, iv: bytes, src: BinaryIO, dst: BinaryIO, *, progress: Progress | None
) -> bytes:
    """Encrypt ``src`` into ``dst`` as ``ciphertext ‖ tag``; return the tag (cmac)."""
    enc = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
    enc.authenticate_additional_data(AAD)
    inbuf = bytearray(_SEGMENT)
    inview = memoryview(inbuf)
    outbuf = bytearray(_SEGMENT + _BLOCK - 1)
    outview = memoryview(outbuf)
    total = 0
    while True:
        n = read_full(src, inview)
        total += n
        if total > MAX_PLAINTEXT_BYTES:
            raise CryptoLimitError(f"aes-gcm plaintext exceeds {MAX_PLAINTEXT_BYTES} bytes")
        if n:
            m = enc.update_into(inview[:n], outbuf)
            dst.write(outview[:m])
            if progress is not None:
                progress(n)
        if n < _SEGMENT:
            break
    enc.finalize()
    tag = enc.tag
    dst.write(tag)
    return tag


class GcmDecryptor(Decryptor):
    """Push-style decryption of ``ciphertext ‖ tag``: feed bytes, then :meth:`finish`.

    Ciphertext is received into a 1 MiB (+ 16) buffer; when it is full,
    everything but its last 16 bytes (which may be the tag) is decrypted to
    ``dst`` and those 16 bytes move to the front. That plaintext is
    unverified until :meth:`finish` returns.
    """

    def __init__(
        self, key: bytes, iv: bytes, dst: BinaryIO, *, expected_cmac: bytes | None,
        counter: ByteCounter,
    ) -> None:  # fmt: skip
        self._dec = Cipher(algorithms.AES(key), modes.GCM(iv)).decryptor()
        self._dec.authenticate_additional_data(AAD)
        self._dst = dst
        self._expected = expected_cmac
        self._counter = counter
        self._buf = bytearray(_SEGMENT + TAG_LENGTH)
        self._view = memoryview(self._buf)
        self._fill = 0
        self._out = bytearray(_SEGMENT + _BLOCK - 1)
        self._produced = 0

    def get_buffer(self) -> memoryview:
        return self._view[self._fill :]

    def buffer_updated(self, n: int) -> None:
        self._counter.add(n)
        self._fill += n
        if self._fill == len(self._buf):
            self._decrypt(_SEGMENT)
            self._view[:TAG_LENGTH] = self._view[_SEGMENT:]
            self._fill = TAG_LENGTH

    def _decrypt(self, body: int) -> None:
        self._produced += body
        _check_size(self._produced)
        if body:
            m = self._dec.update_into(self._view[:body], self._out)
            self._dst.write(memoryview(self._out)[:m])

    def finish(self) -> bytes:
        """Check the tag (against ``expected_cmac``, then GCM); return it.

        Raises:
            IntegrityError: shorter than a tag, tag differs from the expected
                cmac, or the tag does not verify. ``dst`` must then be discarded.
        """
        if self._fill < TAG_LENGTH:
            raise IntegrityError("aes-gcm: file is shorter than its 16-byte tag")
        body = self._fill - TAG_LENGTH
        self._decrypt(body)
        tag = bytes(self._view[body : self._fill])
        if self._expected is not None and not hmac.compare_digest(tag, self._expected):
            raise IntegrityError("aes-gcm: the file's tag differs from the expected cmac")
        try:
            self._dec.finalize_with_tag(tag)
        except InvalidTag as e:
            raise IntegrityError(
                "aes-gcm: authentication tag does not verify (wrong key or iv, or modified file)"
            ) from e
        return tag


def decrypt(
    key: bytes,
    iv: bytes,
    src: BinaryIO,
    dst: BinaryIO,
    *,
    expected_cmac: bytes | None,
    counter: ByteCounter,
) -> bytes:
    """Decrypt ``ciphertext ‖ tag`` from ``src`` into ``dst``; return the tag.

    Raises:
        IntegrityError: the file is shorter than a tag, its tag differs from
            ``expected_cmac``, or the tag does not verify (wrong key or IV,
            modified, truncated or extended file). ``dst`` must then be discarded.
    """
    dec = GcmDecryptor(key, iv, dst, expected_cmac=expected_cmac, counter=counter)
    dec.drain(src)
    return dec.finish()


def cmac_of(src: BinaryIO, counter: ByteCounter) -> bytes:
    """Return the file's last 16 bytes without decrypting (seeks when it can)."""
    if src.seekable():
        size = src.seek(0, 2)
        counter.add(size)
        if size < TAG_LENGTH:
            raise IntegrityError("aes-gcm: file is shorter than its 16-byte tag")
        src.seek(size - TAG_LENGTH)
        tag = bytearray(TAG_LENGTH)
        read_full(src, memoryview(tag))
        return bytes(tag)
    buf = bytearray(_SEGMENT + TAG_LENGTH)
    view = memoryview(buf)
    carry = 0
    while True:
        n = read_full(src, view[carry:])
        counter.add(n)
        filled = carry + n
        if filled < len(buf):
            break
        view[:TAG_LENGTH] = bytes(view[filled - TAG_LENGTH : filled])
        carry = TAG_LENGTH
    if filled < TAG_LENGTH:
        raise IntegrityError("aes-gcm: file is shorter than its 16-byte tag")
    return bytes(view[filled - TAG_LENGTH : filled])


def _check_size(plaintext_bytes: int) -> None:
    if plaintext_bytes > MAX_PLAINTEXT_BYTES:
        raise CryptoLimitError(f"aes-gcm ciphertext exceeds {MAX_PLAINTEXT_BYTES} bytes")
