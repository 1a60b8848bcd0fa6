"""``enclave_info.toml``: the auditor-signed list of accepted measurements.

Format (Teaclave's, extended): one table per service named
``teaclave_<service>_service``. Teaclave's keys ``mr_enclave`` and
``mr_signer`` (SGX, 64 lower-case hex characters) plus confide's TDX keys
``mrtd``, ``rtmr0`` .. ``rtmr3``, ``mr_config_id``, ``mr_owner``,
``mr_owner_config``, ``mr_seam`` and ``mr_servicetd`` (TD report 1.5 only) and
SEV-SNP's ``measurement``, 96 hex characters each.
Values are compared as exact strings, as Teaclave does (its own test fixture
holds placeholder strings, which therefore never match a real measurement).

Auditors sign the raw file bytes with RSA PKCS#1 v1.5 / SHA-256 (Teaclave's
rule). :func:`verify_enclave_info` requires every signature to verify under
some auditor key and at least ``threshold`` distinct auditors.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ...config import Limits
from .._errors import EnclaveInfoError, EnclaveInfoSignatureError

__all__ = [
    "MEASUREMENT_KEYS",
    "EnclaveInfo",
    "generate_enclave_info",
    "service_table",
    "sign_enclave_info",
    "verify_enclave_info",
]

MEASUREMENT_KEYS = ("mr_enclave", "mr_signer", "mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3",
                    "mr_config_id", "mr_owner", "mr_owner_config", "mr_seam", "mr_servicetd",
                    "measurement")
_MAX_VALUE_CHARS = 256


def service_table(service: str) -> str:
    """Table name of a service: ``"frontend"`` -> ``"teaclave_frontend_service"``."""
    if service.startswith("teaclave_") and service.endswith("_service"):
        return service
    return f"teaclave_{service}_service"


@dataclass(frozen=True)
class EnclaveInfo:
    """Accepted measurements per service table.

    Normally obtained from :func:`verify_enclave_info`. Building one directly
    skips the auditors: do so only for tests or a deliberately local setup.
    """

    services: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def for_service(self, service: str) -> Mapping[str, str] | None:
        """Measurements of ``service`` (short or table name), or None."""
        return self.services.get(service_table(service))


def _parse(raw: bytes, limits: Limits) -> EnclaveInfo:
    if len(raw) > limits.max_enclave_info_bytes:
        raise EnclaveInfoError(f"enclave_info exceeds max_enclave_info_bytes "
                               f"({limits.max_enclave_info_bytes})")
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise EnclaveInfoError(f"enclave_info is not valid TOML: {e}") from e
    services: dict[str, dict[str, str]] = {}
    for table, entry in doc.items():
        if not isinstance(entry, dict) or not table.startswith("teaclave_"):
            raise EnclaveInfoError(f"enclave_info: unexpected top-level item {table!r}")
        values: dict[str, str] = {}
        for key, value in entry.items():
            if key not in MEASUREMENT_KEYS:
                raise EnclaveInfoError(f"enclave_info [{table}]: unknown key {key!r}")
            if not isinstance(value, str) or len(value) > _MAX_VALUE_CHARS:
                raise EnclaveInfoError(f"enclave_info [{table}].{key}: not a short string")
            values[key] = value
        services[table] = values
    return EnclaveInfo(services)


def generate_enclave_info(services: Mapping[str, Mapping[str, str]]) -> bytes:
    """Render enclave_info.toml (sorted tables and keys, lower-case hex).

    Args:
        services: service (short or table name) -> {key: hex}.
    """
    lines: list[str] = []
    for service in sorted(services, key=service_table):
        lines.append(f"[{service_table(service)}]")
        for key in MEASUREMENT_KEYS:
            if key in services[service]:
                value = services[service][key].lower()
                if not all(c in "0123456789abcdef" for c in value):
                    raise EnclaveInfoError(f"{service}.{key}: not hex")
                lines.append(f'{key} = "{value}"')
        unknown = set(services[service]) - set(MEASUREMENT_KEYS)
        if unknown:
            raise EnclaveInfoError(f"{service}: unknown keys {sorted(unknown)}")
        lines.append("")
    return "\n".join(lines).encode()


def sign_enclave_info(raw: bytes, private_key: rsa.RSAPrivateKey) -> bytes:
    """An auditor's signature: RSA PKCS#1 v1.5 SHA-256 over the raw bytes."""
    return private_key.sign(raw, padding.PKCS1v15(), hashes.SHA256())


def _key_id(key: rsa.RSAPublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def verify_enclave_info(
    raw: bytes,
    signatures: Sequence[bytes],
    auditor_public_keys: Sequence[rsa.RSAPublicKey],
    threshold: int,
    limits: Limits | None = None,
) -> EnclaveInfo:
    """Verify auditor signatures over enclave_info and parse it.

    Args:
        raw: the exact file bytes.
        signatures: one signature per auditor (order irrelevant).
        auditor_public_keys: the auditors' RSA public keys.
        threshold: distinct auditors whose signature is required (>= 1).
        limits: caps (file size, number of signatures).

    Raises:
        EnclaveInfoSignatureError: a signature verifies under no auditor key,
            or fewer than ``threshold`` distinct auditors signed.
        EnclaveInfoError: the file is malformed or too large.
    """
    limits = limits or Limits()
    if threshold < 1:
        raise EnclaveInfoSignatureError("threshold must be at least 1")
    if len(signatures) > limits.max_enclave_info_signatures:
        raise EnclaveInfoSignatureError("too many enclave_info signatures "
                                        f"(max_enclave_info_signatures={limits.max_enclave_info_signatures})")
    if len(raw) > limits.max_enclave_info_bytes:
        raise EnclaveInfoError("enclave_info exceeds max_enclave_info_bytes "
                               f"({limits.max_enclave_info_bytes})")
    signers: set[bytes] = set()
    for i, sig in enumerate(signatures):
        signer = None
        for key in auditor_public_keys:
            try:
                key.verify(sig, raw, padding.PKCS1v15(), hashes.SHA256())
            except InvalidSignature:
                continue
            signer = _key_id(key)
            break
        if signer is None:
            raise EnclaveInfoSignatureError(f"signature #{i} verifies under no auditor key")
        signers.add(signer)
    if len(signers) < threshold:
        raise EnclaveInfoSignatureError(
            f"{len(signers)} distinct auditor(s) signed; threshold is {threshold}")
    return _parse(raw, limits)
