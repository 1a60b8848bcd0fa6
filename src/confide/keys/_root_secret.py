"""The platform root secret and everything derived from it.

The first node creates 32 random bytes; every other key of the platform
(record sealing, row MACs, token signing, the audit chain, fusion-data keys)
is derived with HKDF-SHA256 under a distinct label, so one secret has to be
protected and distributed (to attested nodes only, see docs/security.md).
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["KeyError_", "RootSecret", "Sealer", "SimSealer", "load_or_create_root_secret"]

_log = logging.getLogger(__name__)
_SECRET_LEN = 32
_SEALED_MAGIC = b"confide-sealed-root-v1\0"


class KeyError_(Exception):
    """Base of errors raised by confide.keys."""


class RootSecret:
    """The platform root secret. Never serialised except through a Sealer."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if len(secret) != _SECRET_LEN:
            raise KeyError_(f"root secret must be {_SECRET_LEN} bytes")
        self._secret = secret

    @classmethod
    def generate(cls) -> RootSecret:
        return cls(secrets.token_bytes(_SECRET_LEN))

    def derive(self, label: str, length: int = 32) -> bytes:
        """Derive an independent key for ``label`` (HKDF-SHA256, info = label)."""
        return HKDF(
            algorithm=hashes.SHA256(),
            length=length,
            salt=b"confide root secret v1",
            info=label.encode(),
        ).derive(self._secret)

    def expose(self) -> bytes:
        """The raw secret, for sealing or for sending to an attested node only."""
        return self._secret

    def __repr__(self) -> str:
        return "RootSecret(<redacted>)"


class Sealer(Protocol):
    """Seals data to the TEE it runs in (SGX sealing, a vTPM, a KMS after attestation)."""

    def seal(self, data: bytes) -> bytes: ...

    def unseal(self, blob: bytes) -> bytes: ...


class SimSealer:
    """Seals with a key kept in a local file.

    This offers NO protection against the operator (who can read the key file);
    it exists so the sim TEE has the same code path as a real one.
    """

    def __init__(self, key_file: Path) -> None:
        self._key_file = key_file
        _log.warning("sim TEE sealing: the sealing key is a plain file (%s); no protection", key_file)

    def _key(self) -> bytes:
        if not self._key_file.exists():
            _write_private(self._key_file, secrets.token_bytes(32))
        key = self._key_file.read_bytes()
        if len(key) != 32:
            raise KeyError_(f"sealing key file {self._key_file} is corrupt")
        return key

    def seal(self, data: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        return _SEALED_MAGIC + nonce + AESGCM(self._key()).encrypt(nonce, data, _SEALED_MAGIC)

    def unseal(self, blob: bytes) -> bytes:
        if not blob.startswith(_SEALED_MAGIC):
            raise KeyError_("sealed blob has an unknown format")
        body = blob[len(_SEALED_MAGIC) :]
        try:
            return AESGCM(self._key()).decrypt(body[:12], body[12:], _SEALED_MAGIC)
        except Exception as e:  # cryptography raises InvalidTag
            raise KeyError_("sealed root secret failed to unseal (tampered or wrong key)") from e


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_or_create_root_secret(path: Path, sealer: Sealer) -> tuple[RootSecret, bool]:
    """Unseal the root secret at ``path``, creating it on first start.

    Returns the secret and whether it was created now.
    """
    if path.exists():
        return RootSecret(sealer.unseal(path.read_bytes())), False
    secret = RootSecret.generate()
    _write_private(path, sealer.seal(secret.expose()))
    return secret, True
