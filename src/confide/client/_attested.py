"""Client-side appraisal of a confide server before anything is sent to it.

For each API endpoint (authentication 7776 → ``teaclave_authentication_service``,
frontend 7777 → ``teaclave_frontend_service``):

1. the auditor-signed ``enclave_info.toml`` is verified first
   (``verify_enclave_info``: every signature valid under an auditor key, at
   least ``threshold`` auditors);
2. the server's certificate is fetched without trusting it
   (``fetch_unverified_certificate``);
3. the Teaclave profile is checked the way the Teaclave SDK does, plus the
   checks it skips (``verify_teaclave_certificate(strict=True)``: AS-root chain,
   report signature, REPORTDATA = key X‖Y, measurements, report version,
   status, freshness, debug bit);
4. optionally the RA-TLS profile is appraised with an ``AppraisalPolicy``
   whose roots are ``trust`` (Intel's root, or the sim root only through
   ``UnsafeTrustSimRoot``, which logs a warning on every use): the quote is
   verified by dcap-qvl with the collateral carried in the certificate.
   A TDX node (quote v4/v5 in its RA-TLS extension) has no Teaclave profile
   (Teaclave's report format is SGX-only): it is attested through RA-TLS alone,
   which therefore requires ``trust``, and its service's enclave_info table
   must list ``mrtd`` (an SGX-only enclave_info refuses it);
5. that exact certificate is pinned for the session (gRPC root = the
   certificate, target name override = its subject CN).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..attestation import (
    INTEL_SGX_ROOT_CA_DER,
    AppraisalPolicy,
    AttestationError,
    EnclaveInfo,
    EnclaveInfoError,
    EnclaveInfoSignatureError,
    RaTlsError,
    TrustBundle,
    UnsafeTrustSimRoot,
    VerifiedPeer,
    fetch_unverified_certificate,
    unverified_certificate_tee,
    verify_enclave_info,
    verify_ratls_with_policy,
    verify_teaclave_certificate,
)
from ..config import Limits
from ._errors import ClientError

__all__ = [
    "API_SERVICE_TABLES",
    "AttestedEndpoint",
    "ServerAttestationError",
    "TrustInputs",
    "attest_endpoint",
    "load_der_certificate",
    "trust_from_bundle",
]

#: The enclave_info table of each client API (spec §4.2 step 8).
API_SERVICE_TABLES: Mapping[str, str] = {
    "authentication": "teaclave_authentication_service",
    "frontend": "teaclave_frontend_service",
}
#: Quote statuses (IAS spelling) accepted in the Teaclave report; mirrors the
#: policy default (UpToDate, SWHardeningNeeded).
_ALLOWED_REPORT_STATUSES = frozenset({"OK", "SW_HARDENING_NEEDED"})
_RATLS_MAX_EVIDENCE_AGE = dt.timedelta(hours=2)  # the server re-attests hourly

TrustRoot = bytes | UnsafeTrustSimRoot


class ServerAttestationError(ClientError):
    """The server's evidence or the enclave_info was refused: nothing was sent to it.

    Attributes:
        reason: the failed check (e.g. ``mr-enclave-mismatch``,
            ``report-signer-untrusted``, ``enclave-info-signature``).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__("ATTESTATION_FAILED", message)
        self.reason = reason


def _reason_of(e: AttestationError) -> str:
    """``MeasurementNotAcceptedError`` -> ``measurement-not-accepted``."""
    name = type(e).__name__.removesuffix("Error")
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")


def load_der_certificate(value: bytes | Path) -> bytes:
    """A certificate given as PEM or DER bytes, or a file holding either, as DER."""
    data = value.read_bytes() if isinstance(value, Path) else bytes(value)
    if b"-----BEGIN CERTIFICATE-----" in data:
        try:
            return x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)
        except ValueError as e:
            raise ServerAttestationError("as-root-invalid", "not a PEM certificate") from e
    return data


def _rsa_key(value: bytes | Path | rsa.RSAPublicKey) -> rsa.RSAPublicKey:
    if isinstance(value, rsa.RSAPublicKey):
        return value
    data = value.read_bytes() if isinstance(value, Path) else value
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as e:
        raise ServerAttestationError("auditor-key-invalid", "auditor key is not PEM") from e
    if not isinstance(key, rsa.RSAPublicKey):
        raise ServerAttestationError("auditor-key-invalid", "auditor key is not RSA")
    return key


@dataclass(frozen=True)
class TrustInputs:
    """What the client trusts, after the enclave_info signatures were verified."""

    as_root_der: bytes
    enclave_info: EnclaveInfo
    ratls_roots: tuple[TrustRoot, ...] | None
    limits: Limits

    @classmethod
    def verify(
        cls,
        *,
        as_root: bytes | Path,
        enclave_info: bytes | Path,
        enclave_info_signatures: Sequence[bytes | Path],
        auditor_keys: Sequence[bytes | Path | rsa.RSAPublicKey],
        threshold: int = 1,
        trust: Sequence[TrustRoot] | None = None,
        limits: Limits | None = None,
    ) -> TrustInputs:
        """Verify the auditors' signatures over enclave_info and gather the roots.

        Raises:
            ServerAttestationError: ``enclave-info-signature`` or ``enclave-info-invalid``.
        """
        limits = limits if limits is not None else Limits()
        raw = enclave_info.read_bytes() if isinstance(enclave_info, Path) else enclave_info
        signatures = [s.read_bytes() if isinstance(s, Path) else s
                      for s in enclave_info_signatures]
        keys = [_rsa_key(k) for k in auditor_keys]
        try:
            info = verify_enclave_info(raw, signatures, keys, threshold, limits)
        except EnclaveInfoSignatureError as e:
            raise ServerAttestationError("enclave-info-signature",
                                         f"enclave_info refused: {e}") from e
        except EnclaveInfoError as e:
            raise ServerAttestationError("enclave-info-invalid",
                                         f"enclave_info refused: {e}") from e
        return cls(as_root_der=load_der_certificate(as_root), enclave_info=info,
                   ratls_roots=tuple(trust) if trust is not None else None, limits=limits)


def trust_from_bundle(bundle: TrustBundle, *, threshold: int = 1,
                      trust: Sequence[TrustRoot] | None = None) -> TrustInputs:
    """:class:`TrustInputs` from a data-dir bundle.

    ``trust`` defaults to the bundle's sim DCAP root (wrapped in
    ``UnsafeTrustSimRoot``, which warns) when it has one, else Intel's SGX root.
    """
    if trust is None:
        trust = [UnsafeTrustSimRoot(bundle.sim_dcap_root_der)] \
            if bundle.sim_dcap_root_der is not None else [INTEL_SGX_ROOT_CA_DER]
    return TrustInputs.verify(
        as_root=bundle.as_root_der, enclave_info=bundle.enclave_info,
        enclave_info_signatures=bundle.signatures, auditor_keys=bundle.auditor_keys,
        threshold=threshold, trust=trust)


@dataclass(frozen=True)
class AttestedEndpoint:
    """An endpoint whose certificate passed appraisal: pin ``certificate_pem``."""

    host: str
    port: int
    service_table: str
    peer: VerifiedPeer
    ratls_checked: bool

    @property
    def certificate_pem(self) -> bytes:
        """PEM of the verified certificate (the gRPC root to pin)."""
        return x509.load_der_x509_certificate(self.peer.certificate_der).public_bytes(
            serialization.Encoding.PEM)


def attest_endpoint(host: str, port: int, service_table: str, trust: TrustInputs, *,
                    now: dt.datetime, timeout: float = 10.0) -> AttestedEndpoint:
    """Fetch ``host:port``'s certificate and appraise it (module docstring, steps 2-4).

    Raises:
        ServerAttestationError: a check failed (``reason`` names it).
        ClientError: ``UNAVAILABLE`` when the server cannot be reached.
    """
    try:
        der = fetch_unverified_certificate(host, port, timeout=timeout, limits=trust.limits)
    except OSError as e:
        raise ClientError("UNAVAILABLE", f"cannot reach {host}:{port}: {e}") from e
    except RaTlsError as e:
        raise ServerAttestationError(e.reason, str(e)) from e
    try:
        policy = None if trust.ratls_roots is None else AppraisalPolicy(
            list(trust.ratls_roots), trust.enclave_info,
            max_evidence_age=_RATLS_MAX_EVIDENCE_AGE, limits=trust.limits)
        if unverified_certificate_tee(der, trust.limits) == "tdx":
            if policy is None:
                raise ServerAttestationError(
                    "ratls-trust-required", f"{host}:{port} is a TDX node, attested through "
                    "RA-TLS only: give trust roots")
            peer = verify_ratls_with_policy(der, policy, service=service_table, now=now)
        else:
            peer = verify_teaclave_certificate(
                der, as_root_der=trust.as_root_der, enclave_info=trust.enclave_info.services,
                service_table=service_table, now=now, strict=True,
                allowed_statuses=_ALLOWED_REPORT_STATUSES, limits=trust.limits)
            if policy is not None:
                verify_ratls_with_policy(der, policy, service=service_table, now=now)
    except RaTlsError as e:
        raise ServerAttestationError(e.reason, f"{host}:{port}: {e}") from e
    except AttestationError as e:  # the RA-TLS appraisal's refusals (AppraisalError, ...)
        raise ServerAttestationError(_reason_of(e), f"{host}:{port}: {e}") from e
    return AttestedEndpoint(host=host, port=port, service_table=service_table, peer=peer,
                            ratls_checked=trust.ratls_roots is not None)
