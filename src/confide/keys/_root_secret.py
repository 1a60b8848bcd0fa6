"""The platform root secret, what derives from it, and sealing it to disk.

Derivation: ``HKDF-SHA256(ikm=secret, salt="confide/root-secret/v1",
info="confide/" + label, length)``. Labels are a closed set so two components
can never derive the same key by accident.

Sealing: a :class:`Sealer` turns the secret into an opaque blob safe to write
on the operator's disk. In a real TEE that is the TEE's sealing key (Gramine
protected files, an SGX sealing key, a vTPM...); :class:`SimSealer` keeps its
key in a plain file and offers NO protection outside a real TEE — it warns
every time it is created.
"""

from __future__ import annotations

import hmac
import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from confide._atomic import write_atomic
from confide.keys._errors import KeysError, SealingError

__all__ = [
    "DERIVATION_LABELS",
    "ROOT_SECRET_BYTES",
    "RootSecret",
    "Sealer",
    "SimSealer",
    "UnsafeSimSealerWarning",
    "load_root_secret",
    "store_root_secret",
]

_log = logging.getLogger(__name__)

ROOT_SECRET_BYTES = 32
DERIVATION_LABELS = frozenset(
    {"record-seal", "record-mac", "token-sign", "fusion-keys", "platform-ca", "audit-chain",
     "blob-presign", "keyring", "login-throttle"}
)
_SALT = b"confide/root-secret/v1"
_MAX_DERIVED_BYTES = 255 * 32  # HKDF-SHA256 output limit
_SIM_MAGIC = b"CONFIDE-SIMSEAL-1"
_SIM_AAD = b"confide/sim-seal/v1|"
_ROOT_CONTEXT = b"confide/root-secret"
_MAX_SEALED_BYTES = 64 * 1024


class RootSecret:
    """32 random bytes from which every platform key is derived. Never logged or printed."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        """Wrap existing secret bytes (from unsealing or from enrolment)."""
        if len(secret) != ROOT_SECRET_BYTES:
            raise KeysError("root-secret-size", f"root secret must be {ROOT_SECRET_BYTES} bytes")
        self._secret = bytes(secret)

    @classmethod
    def generate(cls, randbytes: Callable[[int], bytes] = os.urandom) -> RootSecret:
        """A new root secret (the first node of a platform creates it)."""
        return cls(randbytes(ROOT_SECRET_BYTES))

    def derive(self, label: str, length: int) -> bytes:
        """Derive ``length`` bytes for ``label`` (one of :data:`DERIVATION_LABELS`).

        Raises:
            KeysError: ``unknown-label`` or ``bad-length``.
        """
        if label not in DERIVATION_LABELS:
            raise KeysError("unknown-label", f"no derivation label {label!r}")
        if not 1 <= length <= _MAX_DERIVED_BYTES:
            raise KeysError("bad-length", f"cannot derive {length} bytes")
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=length,
            salt=_SALT,
            info=b"confide/" + label.encode("ascii"),
        )
        return hkdf.derive(self._secret)

    def expose_secret_bytes(self) -> bytes:
        """The raw secret, for sealing or for encrypting it to an attested node only."""
        return self._secret

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RootSecret):
            return NotImplemented
        return hmac.compare_digest(self._secret, other._secret)

    __hash__ = None  # type: ignore[assignment]  # secrets are not dict keys

    def __repr__(self) -> str:
        return "RootSecret(<redacted>)"


class Sealer(Protocol):
    """Encrypts data so that only this TEE (identity/platform) can decrypt it again."""

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        """Seal ``plaintext``; ``context`` is authenticated and must match at unseal."""
        ...

    def unseal(self, sealed: bytes, context: bytes) -> bytes:
        """Recover the plaintext; raise :class:`SealingError` on any mismatch."""
        ...


class UnsafeSimSealerWarning(UserWarning):
    """Warns that the sim sealer keeps its key in a plain file (no protection)."""


class SimSealer:
    """AES-256-GCM under a key kept in ``key_file``: for the ``sim`` TEE only.

    Anyone who can read ``key_file`` (the operator) can unseal everything; this
    class exists so that development deployments exercise the same code path.
    """

    def __init__(self, key_file: Path) -> None:
        """Load the sealing key from ``key_file``, creating it (mode 0600) if missing."""
        message = (
            f"SimSealer keeps its key in {key_file}: sealed secrets have NO protection "
            "outside a real TEE"
        )
        warnings.warn(message, UnsafeSimSealerWarning, stacklevel=2)
        _log.warning(message)
        if key_file.exists():
            key = key_file.read_bytes()
            if len(key) != 32:
                raise SealingError("sim-key-invalid", f"{key_file} does not hold a 32-byte key")
        else:
            key_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            key = AESGCM.generate_key(bit_length=256)
            write_atomic(key_file, key)
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        """``magic ‖ nonce(12) ‖ AES-GCM(plaintext, aad = prefix ‖ context)``."""
        nonce = os.urandom(12)
        return _SIM_MAGIC + nonce + self._aead.encrypt(nonce, plaintext, _SIM_AAD + context)

    def unseal(self, sealed: bytes, context: bytes) -> bytes:
        """Reverse :meth:`seal`.

        Raises:
            SealingError: ``unseal-failed`` (wrong key, context or tampered blob).
        """
        if len(sealed) > _MAX_SEALED_BYTES or not sealed.startswith(_SIM_MAGIC):
            raise SealingError("unseal-failed", "not a sim-sealed blob")
        body = sealed[len(_SIM_MAGIC) :]
        try:
            return self._aead.decrypt(body[:12], body[12:], _SIM_AAD + context)
        except InvalidTag as e:
            raise SealingError("unseal-failed", "sealed blob does not authenticate") from e


def store_root_secret(path: Path, secret: RootSecret, sealer: Sealer) -> None:
    """Seal ``secret`` and write it atomically to ``path`` (mode 0600)."""
    write_atomic(path, sealer.seal(secret.expose_secret_bytes(), _ROOT_CONTEXT))


def load_root_secret(path: Path, sealer: Sealer) -> RootSecret:
    """Read and unseal the root secret stored by :func:`store_root_secret`.

    Raises:
        SealingError: ``unseal-failed`` when the blob does not unseal.
        KeysError: ``root-secret-size`` when it unseals to the wrong size.
    """
    sealed = path.read_bytes()
    if len(sealed) > _MAX_SEALED_BYTES:
        raise SealingError("unseal-failed", f"{path} is too large to be a sealed root secret")
    return RootSecret(sealer.unseal(sealed, _ROOT_CONTEXT))
