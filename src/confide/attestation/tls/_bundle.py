"""What a client needs to attest a confide server, as files in a directory.

``confide serve`` writes these into its data directory (nothing secret); a
client copies them (or reads them in place) and calls
``Client.connect_data_dir``. Layout (Teaclave's names where Teaclave has one)::

    enclave_info.toml                         accepted measurements, 7 service tables
    auditors/<name>/<name>.public.pem         each auditor's RSA public key
    auditors/<name>/<name>.sign.sha256        its RSA PKCS#1 v1.5 SHA-256 signature
                                              over the raw enclave_info.toml bytes
    as-root-ca.pem                            attestation report service root (AS root)
    sim-dcap-root.der                         sim only: root of the sim DCAP hierarchy,
                                              for the RA-TLS (2.23.133.5.4.9) check
    api-cert.pem                              the current API certificate (pinning)

Loading applies the size caps of :class:`~confide.config.Limits`; nothing is
verified here (``verify_enclave_info`` and the certificate checks do that).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..._atomic import PUBLIC_MODE, write_atomic
from ...config import Limits
from .._errors import EnclaveInfoError

__all__ = [
    "API_CERT_FILE",
    "AS_ROOT_FILE",
    "AUDITORS_DIR",
    "ENCLAVE_INFO_FILE",
    "SIM_DCAP_ROOT_FILE",
    "TrustBundle",
    "write_public_file",
]

ENCLAVE_INFO_FILE = "enclave_info.toml"
AUDITORS_DIR = "auditors"
AS_ROOT_FILE = "as-root-ca.pem"
SIM_DCAP_ROOT_FILE = "sim-dcap-root.der"
API_CERT_FILE = "api-cert.pem"
_SIGNATURE_SUFFIX = ".sign.sha256"
_PUBLIC_KEY_SUFFIX = ".public.pem"
_MAX_AUDITOR_KEY_BYTES = 16 * 1024


def write_public_file(path: Path, data: bytes) -> None:
    """Write a non-secret file atomically (mode 0644)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data, mode=PUBLIC_MODE)


def _read_capped(path: Path, cap: int, what: str) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(cap + 1)
    except OSError as e:
        raise EnclaveInfoError(f"cannot read {what} {path}: {e.strerror}") from e
    if len(data) > cap:
        raise EnclaveInfoError(f"{what} {path} is larger than {cap} bytes")
    return data


def _load_auditor_key(pem: bytes, path: Path) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as e:
        raise EnclaveInfoError(f"auditor key {path} is not a PEM public key") from e
    if not isinstance(key, rsa.RSAPublicKey):
        raise EnclaveInfoError(f"auditor key {path} is not an RSA key")
    return key


@dataclass(frozen=True)
class TrustBundle:
    """The unverified inputs of client-side attestation, loaded from a directory.

    Attributes:
        enclave_info: raw ``enclave_info.toml`` bytes (verify before use).
        signatures: auditor signatures over ``enclave_info``.
        auditor_keys: the auditors' RSA public keys.
        as_root_der: the attestation report service root (DER).
        sim_dcap_root_der: the sim DCAP root, when the server is a sim node.
    """

    enclave_info: bytes
    signatures: tuple[bytes, ...]
    auditor_keys: tuple[rsa.RSAPublicKey, ...]
    as_root_der: bytes
    sim_dcap_root_der: bytes | None

    @classmethod
    def load(cls, directory: Path, limits: Limits | None = None) -> TrustBundle:
        """Read the bundle files from ``directory`` (layout in the module docstring).

        Raises:
            EnclaveInfoError: a file is missing, too large or malformed.
        """
        limits = limits if limits is not None else Limits()
        info = _read_capped(directory / ENCLAVE_INFO_FILE, limits.max_enclave_info_bytes,
                            "enclave_info")
        auditors = directory / AUDITORS_DIR
        names = sorted(p.name for p in auditors.iterdir() if p.is_dir()) \
            if auditors.is_dir() else []
        if len(names) > limits.max_enclave_info_signatures:
            raise EnclaveInfoError(f"more than {limits.max_enclave_info_signatures} auditors")
        signatures: list[bytes] = []
        keys: list[rsa.RSAPublicKey] = []
        for name in names:
            key_path = auditors / name / (name + _PUBLIC_KEY_SUFFIX)
            keys.append(_load_auditor_key(
                _read_capped(key_path, _MAX_AUDITOR_KEY_BYTES, "auditor key"), key_path))
            sig_path = auditors / name / (name + _SIGNATURE_SUFFIX)
            if sig_path.exists():
                signatures.append(_read_capped(sig_path, limits.max_report_signature_bytes,
                                               "auditor signature"))
        as_root_pem = _read_capped(directory / AS_ROOT_FILE, limits.max_certificate_bytes,
                                   "AS root")
        try:
            as_root_der = x509.load_pem_x509_certificate(as_root_pem).public_bytes(
                serialization.Encoding.DER)
        except ValueError as e:
            raise EnclaveInfoError(f"{directory / AS_ROOT_FILE} is not a PEM certificate") from e
        sim_path = directory / SIM_DCAP_ROOT_FILE
        sim_root = _read_capped(sim_path, limits.max_certificate_bytes, "sim DCAP root") \
            if sim_path.exists() else None
        return cls(enclave_info=info, signatures=tuple(signatures), auditor_keys=tuple(keys),
                   as_root_der=as_root_der, sim_dcap_root_der=sim_root)
