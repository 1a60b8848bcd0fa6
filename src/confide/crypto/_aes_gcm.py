"""Teaclave's ``aes-gcm-128`` / ``aes-gcm-256`` file format, streamed.

A file is ``ciphertext ‖ tag`` (16 bytes), AES-GCM over the whole plaintext with
the registered key and 12-byte IV and **8 zero bytes of associated data**
(Teaclave ``crypto/src/lib.rs``); the tag is the file's cmac.

There is one tag for the whole file, so ``decrypt`` writes plaintext to ``dst``
before it can know the file is authentic: the caller must discard ``dst``
unless ``decrypt`` returned.
"""

from __future__ import annotations

import hmac
from typing import BinaryIO, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ._errors import CryptoLimitError, IntegrityError
from ._io import ByteCounter, Progress, read_full

__all__ = ["AAD", "MAX_PLAINTEXT_BYTES", "TAG_LENGTH", "cmac_of", "decrypt", "encrypt"]

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
    dec = Cipher(algorithms.AES(key), modes.GCM(iv)).decryptor()
    dec.authenticate_additional_data(AAD)
    buf = bytearray(_SEGMENT + TAG_LENGTH)
    view = memoryview(buf)
    outbuf = bytearray(_SEGMENT + _BLOCK - 1)
    outview = memoryview(outbuf)
    carry = 0  # bytes kept at the front of buf: a possible tag
    produced = 0
    while True:
        n = read_full(src, view[carry:])
        counter.add(n)
        filled = carry + n
        if filled < len(buf):
            break
        body = filled - TAG_LENGTH
        produced += body
        _check_size(produced)
        m = dec.update_into(view[:body], outbuf)
        dst.write(outview[:m])
        view[:TAG_LENGTH] = bytes(view[body:filled])
        carry = TAG_LENGTH
    if filled < TAG_LENGTH:
        raise IntegrityError("aes-gcm: file is shorter than its 16-byte tag")
    body = filled - TAG_LENGTH
    _check_size(produced + body)
    if body:
        m = dec.update_into(view[:body], outbuf)
        dst.write(outview[:m])
    tag = bytes(view[body:filled])
    if expected_cmac is not None and not hmac.compare_digest(tag, expected_cmac):
        raise IntegrityError("aes-gcm: the file's tag differs from the expected cmac")
    try:
        dec.finalize_with_tag(tag)
    except InvalidTag as e:
        raise IntegrityError(
            "aes-gcm: authentication tag does not verify (wrong key or iv, or modified file)"
        ) from e
    return tag


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
