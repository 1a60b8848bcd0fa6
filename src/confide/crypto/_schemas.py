"""Schema names and crypto-info validation (spec §3.5), with Teaclave's messages."""

from __future__ import annotations

from typing import Final

from ._errors import CryptoInfoError

__all__ = [
    "AES_GCM_128",
    "AES_GCM_256",
    "CMAC_LENGTH",
    "CONFIDE_STREAM_256",
    "DEFAULT_SCHEMA",
    "RAW",
    "SCHEMAS",
    "TEACLAVE_FILE_128",
    "validate_crypto_info",
]

AES_GCM_128: Final = "aes-gcm-128"
AES_GCM_256: Final = "aes-gcm-256"
TEACLAVE_FILE_128: Final = "teaclave-file-128"
CONFIDE_STREAM_256: Final = "confide-stream-256"
RAW: Final = "raw"

#: Every schema confide accepts; the first four are Teaclave's (spec §3.5).
SCHEMAS: Final[frozenset[str]] = frozenset(
    {AES_GCM_128, AES_GCM_256, TEACLAVE_FILE_128, RAW, CONFIDE_STREAM_256}
)
#: The schema confide's own SDK uses for new data (docs/file-formats.md).
DEFAULT_SCHEMA: Final = CONFIDE_STREAM_256
#: Length of every schema's cmac (Teaclave's ``FileAuthTag``).
CMAC_LENGTH: Final = 16

_IV_LENGTH = 12


def validate_crypto_info(schema: str, key: bytes, iv: bytes) -> None:
    """Check a schema/key/iv triple the way Teaclave's ``FileCrypto::new`` does.

    Args:
        schema: One of :data:`SCHEMAS`.
        key: The file key: 16 bytes (``aes-gcm-128``, ``teaclave-file-128``) or
            32 bytes (``aes-gcm-256``, ``confide-stream-256``); ignored for ``raw``.
        iv: 12 bytes for the aes-gcm schemas, empty for ``teaclave-file-128`` and
            ``confide-stream-256`` (they carry their nonces in the file); ignored
            for ``raw``.

    Raises:
        CryptoInfoError: with Teaclave's message, e.g.
            ``Invalid key length for AesGcm128: 15`` or ``Invalid crypto schema: foo``.
    """
    if schema == AES_GCM_128:
        _check_len(key, 16, "Invalid key length for AesGcm128")
        _check_len(iv, _IV_LENGTH, "Invalid iv length for AesGcm128")
    elif schema == AES_GCM_256:
        _check_len(key, 32, "Invalid key length for AesGcm256")
        _check_len(iv, _IV_LENGTH, "Invalid iv length for AesGcm256")
    elif schema == TEACLAVE_FILE_128:
        # Teaclave checks the iv before the key.
        if iv:
            raise CryptoInfoError("IV is not empty for teaclave_file_128")
        _check_len(key, 16, "Invalid key length for teaclave_file_128")
    elif schema == CONFIDE_STREAM_256:
        if iv:
            raise CryptoInfoError("IV is not empty for confide_stream_256")
        _check_len(key, 32, "Invalid key length for confide_stream_256")
    elif schema == RAW:
        return
    else:
        raise CryptoInfoError(f"Invalid crypto schema: {schema}")


def _check_len(value: bytes, expected: int, message: str) -> None:
    if len(value) != expected:
        raise CryptoInfoError(f"{message}: {len(value)}")
