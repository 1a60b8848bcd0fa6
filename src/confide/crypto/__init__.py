"""confide's file encryption formats, streamed over file objects.

Formats (byte by byte in ``docs/file-formats.md``):

- ``aes-gcm-128`` / ``aes-gcm-256``: Teaclave's, ``ciphertext ‖ tag``, AAD =
  8 zero bytes, cmac = tag. One tag per file: decrypted output is unverified
  until :func:`decrypt_stream` returns. The registered IV is reused on every
  write (spec Q19): a nonce reuse Teaclave clients depend on.
- ``teaclave-file-128``: Intel SGX Protected FS as used by Teaclave (user
  key, Merkle tree of 4 KiB nodes); cmac = metadata GMAC.
- ``confide-stream-256``: confide's own segmented AEAD (Tink AES-GCM-HKDF
  streaming / STREAM), the default for new data; cmac = SHA-256 over the
  header and all segment tags, truncated to 16 bytes.
- ``raw``: no encryption (accepted for Teaclave compatibility).

No I/O beyond the file objects passed in. Every error is a :class:`CryptoError`.
"""

from ._api import (
    PUSH_SCHEMAS,
    compute_cmac,
    decrypt_stream,
    encrypt_stream,
    encrypted_size,
    new_decryptor,
)
from ._errors import CryptoError, CryptoInfoError, CryptoLimitError, IntegrityError
from ._io import Decryptor
from ._schemas import CMAC_LENGTH, DEFAULT_SCHEMA, SCHEMAS, validate_crypto_info

# Plain ``sorted()`` order (the project's pinned-__all__ convention), not ruff's isort order.
__all__ = [  # noqa: RUF022
    "CMAC_LENGTH",
    "CryptoError",
    "CryptoInfoError",
    "CryptoLimitError",
    "DEFAULT_SCHEMA",
    "Decryptor",
    "IntegrityError",
    "PUSH_SCHEMAS",
    "SCHEMAS",
    "compute_cmac",
    "decrypt_stream",
    "encrypt_stream",
    "encrypted_size",
    "new_decryptor",
    "validate_crypto_info",
]
