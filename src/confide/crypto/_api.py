"""The schema-dispatching entry points of :mod:`confide.crypto`."""

from __future__ import annotations

import os
from typing import BinaryIO, Final

from ..config import Limits
from . import _aes_gcm, _pfs, _stream
from ._errors import CryptoError
from ._io import ByteCounter, Decryptor, Progress, Rng
from ._pfs_push import PfsDecryptor
from ._schemas import (
    AES_GCM_128,
    AES_GCM_256,
    CMAC_LENGTH,
    CONFIDE_STREAM_256,
    RAW,
    TEACLAVE_FILE_128,
    validate_crypto_info,
)

__all__ = ["compute_cmac", "decrypt_stream", "encrypt_stream", "encrypted_size", "new_decryptor"]

_DEFAULT_LIMITS: Final = Limits()
_AES_GCM: Final = frozenset({AES_GCM_128, AES_GCM_256})


def encrypt_stream(
    schema: str,
    key: bytes,
    iv: bytes,
    src: BinaryIO,
    dst: BinaryIO,
    *,
    file_name: str | None = None,
    progress: Progress | None = None,
    rng: Rng = os.urandom,
    limits: Limits = _DEFAULT_LIMITS,
) -> bytes:
    """Encrypt the plaintext read from ``src`` into ``dst`` in bounded memory.

    Args:
        schema: One of :data:`SCHEMAS`. ``aes-gcm-*`` uses ``iv`` as is: never
            encrypt two different plaintexts with the same key and IV (spec Q19);
            prefer ``confide-stream-256`` (the default for new data).
        key: The file key (length per schema, see :func:`validate_crypto_info`).
        iv: 12 bytes for ``aes-gcm-*``, empty for the others.
        src: Plaintext, read to its end.
        dst: Receives the ciphertext; must be seekable for ``teaclave-file-128``.
        file_name: ``teaclave-file-128`` only (required): the base name the file
            will be stored under, embedded and checked on decryption.
        progress: Called with the number of plaintext bytes consumed since the
            previous call.
        rng: Source of random bytes (salts, nonces, node keys).
        limits: Caps; ``max_teaclave_file_bytes`` bounds the protected-file writer.

    Returns:
        The 16-byte cmac to register with the file (``b""`` for ``raw``, which
        copies the bytes unchanged and has no cmac).

    Raises:
        CryptoInfoError: invalid schema/key/iv.
        CryptoError: misuse (missing ``file_name``, non-seekable ``dst``).
        CryptoLimitError: the plaintext is larger than the format or a cap allows.
    """
    validate_crypto_info(schema, key, iv)
    if schema in _AES_GCM:
        return _aes_gcm.encrypt(key, iv, src, dst, progress=progress)
    if schema == TEACLAVE_FILE_128:
        return _pfs.encrypt(
            key, src, dst, file_name=file_name, rng=rng, progress=progress, limits=limits
        )
    if schema == CONFIDE_STREAM_256:
        return _stream.encrypt(key, src, dst, rng=rng, progress=progress)
    _copy(src, dst, ByteCounter(limits.max_encrypted_file_bytes, progress, "raw file"))
    return b""


def decrypt_stream(
    schema: str,
    key: bytes,
    iv: bytes,
    src: BinaryIO,
    dst: BinaryIO,
    *,
    expected_cmac: bytes | None = None,
    file_name: str | None = None,
    progress: Progress | None = None,
    limits: Limits = _DEFAULT_LIMITS,
) -> bytes:
    """Verify and decrypt the untrusted ciphertext read from ``src`` into ``dst``.

    **Plaintext in** ``dst`` **is trustworthy only after this returns.** For
    ``aes-gcm-*`` (one tag over the whole file) plaintext is written before the
    tag can be checked; the other formats write only authenticated nodes or
    segments, but a later failure still leaves a partial file. On any error the
    caller must discard everything written to ``dst``.

    Args:
        schema: One of :data:`SCHEMAS`.
        key: The file key.
        iv: 12 bytes for ``aes-gcm-*``, empty for the others.
        src: Ciphertext; must be seekable for ``teaclave-file-128``.
        dst: Receives the plaintext.
        expected_cmac: The registered 16-byte cmac; a different file cmac is an
            :class:`IntegrityError`. Not checked for ``raw`` (spec Q28).
        file_name: ``teaclave-file-128`` only (required): the base name the file
            is stored under; it must equal the name embedded at encryption.
        progress: Called with the number of ciphertext bytes consumed since the
            previous call.
        limits: Caps on the untrusted input.

    Returns:
        The file's 16-byte cmac (``b""`` for ``raw``).

    Raises:
        IntegrityError: the ciphertext failed a check; the message names it.
        CryptoLimitError: the ciphertext exceeds a cap.
        CryptoInfoError: invalid schema/key/iv.
        CryptoError: misuse (missing ``file_name``, non-seekable ``src``, an
            ``expected_cmac`` that is not 16 bytes).
    """
    validate_crypto_info(schema, key, iv)
    if expected_cmac is not None and len(expected_cmac) != CMAC_LENGTH and schema != RAW:
        raise CryptoError(f"expected_cmac must be {CMAC_LENGTH} bytes, got {len(expected_cmac)}")
    counter = ByteCounter(limits.max_encrypted_file_bytes, progress, "encrypted file")
    if schema in _AES_GCM:
        return _aes_gcm.decrypt(key, iv, src, dst, expected_cmac=expected_cmac, counter=counter)
    if schema == TEACLAVE_FILE_128:
        return _pfs.decrypt(
            key,
            src,
            dst,
            file_name=file_name,
            expected_cmac=expected_cmac,
            counter=counter,
            limits=limits,
        )
    if schema == CONFIDE_STREAM_256:
        return _stream.decrypt(
            key, src, dst, expected_cmac=expected_cmac, counter=counter, limits=limits
        )
    _copy(src, dst, counter)
    return b""


#: Schemas :func:`new_decryptor` can verify as the bytes arrive. teaclave-file-128 can
#: be too, given its ``file_name``; it is not listed because Teaclave reports its
#: integrity failures when the function opens it (spec Q29), not when it is fetched.
PUSH_SCHEMAS: Final = frozenset({AES_GCM_128, AES_GCM_256, CONFIDE_STREAM_256})


def new_decryptor(
    schema: str,
    key: bytes,
    iv: bytes,
    dst: BinaryIO,
    *,
    expected_cmac: bytes | None = None,
    file_name: str | None = None,
    progress: Progress | None = None,
    limits: Limits = _DEFAULT_LIMITS,
    write_behind: bool = True,
) -> Decryptor:
    """A push-style :class:`Decryptor` writing plaintext to ``dst`` (for a network receiver).

    The same checks as :func:`decrypt_stream` (which is built on it), but the
    ciphertext is pushed in as it arrives -- ``get_buffer``/``buffer_updated``
    lend the decryptor's own buffer to ``recv_into``, ``write`` copies -- and
    :meth:`Decryptor.finish` completes the verification. **Plaintext in**
    ``dst`` **is trustworthy only after** ``finish`` **returns**; on any
    exception discard ``dst``.

    Args:
        schema: ``aes-gcm-128``, ``aes-gcm-256``, ``confide-stream-256``
            (:data:`PUSH_SCHEMAS`) or ``teaclave-file-128`` (read in file order:
            each MHT node precedes its data nodes); ``raw`` has nothing to verify.
        key, iv, expected_cmac, file_name, progress, limits: as for
            :func:`decrypt_stream`.
        write_behind: teaclave-file-128 only: write the plaintext on a helper
            thread while the next group arrives (with the C extension and a
            ``dst`` that has a file descriptor). It pays off where writes are
            slow (4 KiB tmpfs pages, disks); where they are cheap (a tmpfs with
            large pages) the hand-off costs more than it saves.

    Raises:
        CryptoInfoError: invalid schema/key/iv.
        CryptoError: ``raw``, teaclave-file-128 without ``file_name``, or an
            ``expected_cmac`` that is not 16 bytes.
    """
    validate_crypto_info(schema, key, iv)
    if schema not in PUSH_SCHEMAS and schema != TEACLAVE_FILE_128:
        raise CryptoError(f"{schema} cannot be decrypted as a push stream")
    if expected_cmac is not None and len(expected_cmac) != CMAC_LENGTH:
        raise CryptoError(f"expected_cmac must be {CMAC_LENGTH} bytes, got {len(expected_cmac)}")
    counter = ByteCounter(limits.max_encrypted_file_bytes, progress, "encrypted file")
    if schema == TEACLAVE_FILE_128:
        if file_name is None:
            raise CryptoError("teaclave-file-128 needs file_name (the name the file is stored as)")
        return PfsDecryptor(
            key, dst, file_name=file_name, expected_cmac=expected_cmac, counter=counter,
            limits=limits, write_behind=write_behind,
        )  # fmt: skip
    if schema == CONFIDE_STREAM_256:
        return _stream.StreamDecryptor(
            key, dst, expected_cmac=expected_cmac, counter=counter, limits=limits
        )
    return _aes_gcm.GcmDecryptor(key, iv, dst, expected_cmac=expected_cmac, counter=counter)


def compute_cmac(schema: str, src: BinaryIO, *, limits: Limits = _DEFAULT_LIMITS) -> bytes:
    """Return the cmac of an encrypted file without the key.

    ``aes-gcm-*``: the last 16 bytes. ``teaclave-file-128``: the metadata gmac
    in the plain header. ``confide-stream-256``: SHA-256 over the header and the
    segment tags, truncated to 16 bytes (only the tags are read when ``src`` is
    seekable). This identifies a ciphertext; it does not authenticate it.

    Raises:
        IntegrityError: the file is too short or its header is malformed.
        CryptoError: unknown schema, or ``raw`` (which has no cmac).
    """
    counter = ByteCounter(limits.max_encrypted_file_bytes, None, "encrypted file")
    if schema in _AES_GCM:
        return _aes_gcm.cmac_of(src, counter)
    if schema == TEACLAVE_FILE_128:
        return _pfs.cmac_of(src, counter)
    if schema == CONFIDE_STREAM_256:
        return _stream.cmac_of(src, counter, limits)
    if schema == RAW:
        raise CryptoError("raw files have no cmac")
    validate_crypto_info(schema, b"", b"")  # raises: unknown schema
    raise CryptoError(f"no cmac for schema {schema}")  # pragma: no cover - unreachable


def encrypted_size(schema: str, plaintext_size: int) -> int | None:
    """How many bytes :func:`encrypt_stream` makes of ``plaintext_size`` bytes.

    Lets a client send a ciphertext with its ``Content-Length`` while it is
    being made. None for ``teaclave-file-128`` (its writer seeks back) and for
    unknown schemas.
    """
    if plaintext_size < 0:
        raise ValueError("plaintext_size must be >= 0")
    if schema in _AES_GCM:
        return plaintext_size + _aes_gcm.TAG_LENGTH
    if schema == CONFIDE_STREAM_256:
        segments = max(1, -(-plaintext_size // _stream.DEFAULT_SEGMENT))
        return _stream.HEADER_LENGTH + plaintext_size + segments * _stream.TAG_LENGTH
    if schema == RAW:
        return plaintext_size
    return None


def _copy(src: BinaryIO, dst: BinaryIO, counter: ByteCounter) -> None:
    while chunk := src.read(1 << 20):
        counter.add(len(chunk))
        dst.write(chunk)
