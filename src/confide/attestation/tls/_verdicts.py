"""Quote verifiers for the attested-TLS seam, built from the real DCAP path.

Attested TLS (report service, ``verify_ratls_certificate``, enrolment) takes a
``VerifyQuote`` callable: ``(quote, now) -> QuoteVerdict``. These factories
build one from the real verifiers, so the platform never runs a fake:

* :func:`dcap_quote_verifier`: ``verify_dcap_quote`` against one root, with
  collateral from an injected source. This is what an attestation report
  service does: it verifies signatures and reports the TCB status, but judges
  no measurement (the client does that with enclave_info).
* :func:`policy_quote_verifier`: a full :class:`AppraisalPolicy` appraisal
  (root, measurements of one service, TCB status, debug, age) for a quote whose
  expected REPORTDATA and collateral are known, e.g. from the certificate
  that carries it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from ...config import Limits
from .._errors import CertificateFormatError, EvidenceBindingError, EvidenceFormatError
from ..appraisal import AppraisalPolicy, UnsafeTrustSimRoot, verify_dcap_quote
from ..evidence import Evidence, SgxQuote, TeeType, parse_quote, unverified_report_data
from ._client_check import VerifiedPeer, _load_certificate, verify_ratls_certificate
from ._ratls_cert import (
    RATLS_ENDORSEMENT_OID,
    RATLS_EVIDENCE_OID,
    parse_ratls_endorsements,
    parse_ratls_evidence,
)
from ._ratls_types import VerifyQuote
from ._teaclave_report import tls_report_data

__all__ = [
    "DcapVerdict",
    "certificate_collateral",
    "dcap_quote_verifier",
    "policy_quote_verifier",
    "unverified_certificate_tee",
    "verify_ratls_with_policy",
]


@dataclass(frozen=True)
class DcapVerdict:
    """A verified quote's claims in the shape attested TLS reads (``QuoteVerdict``)."""

    status: str
    advisories: tuple[str, ...]
    mr_enclave: bytes
    mr_signer: bytes
    report_data: bytes
    measurements: Mapping[str, str]


def _verdict(status: str, advisories: tuple[str, ...], measurements: Mapping[str, str],
             report_data: bytes) -> DcapVerdict:
    return DcapVerdict(
        status=status, advisories=advisories,
        mr_enclave=bytes.fromhex(measurements.get("mr_enclave", "")),
        mr_signer=bytes.fromhex(measurements.get("mr_signer", "")),
        report_data=bytes(report_data), measurements=dict(measurements))


def dcap_quote_verifier(
    trusted_root: bytes | UnsafeTrustSimRoot,
    collateral_for: Callable[[bytes, dt.datetime], bytes],
    *,
    limits: Limits | None = None,
) -> VerifyQuote:
    """A ``VerifyQuote`` running :func:`verify_dcap_quote` against one root.

    Args:
        trusted_root: the Intel SGX root (DER), or the sim root wrapped in
            :class:`UnsafeTrustSimRoot` (which logs a warning on every use).
        collateral_for: ``(quote, now) -> collateral JSON`` (a PCCS client, a
            cache, or the sim attester's collateral).
        limits: size caps.

    Returns:
        A callable raising an ``AttestationError`` subclass when the quote does
        not verify; TCB status and measurements are NOT judged here.
    """
    def verify(quote: bytes, now: dt.datetime) -> DcapVerdict:
        root = trusted_root.use() if isinstance(trusted_root, UnsafeTrustSimRoot) \
            else bytes(trusted_root)
        verified = verify_dcap_quote(quote, collateral_for(quote, now), trusted_root_der=root,
                                     now=now, limits=limits)
        return _verdict(verified.tcb_status, verified.advisory_ids, verified.measurements,
                        verified.report_data)

    return verify


def policy_quote_verifier(
    policy: AppraisalPolicy,
    *,
    service: str,
    collateral: bytes,
    expected_report_data: bytes,
    produced_at: dt.datetime | None,
    tee: TeeType | None = None,
) -> VerifyQuote:
    """A ``VerifyQuote`` that appraises the quote with ``policy`` for ``service``.

    Args:
        policy: roots, accepted measurements, TCB statuses, debug, max age.
        service: the service the peer must be (``"frontend"`` or its table name).
        collateral: the quote's collateral (e.g. from the certificate's
            2.23.133.5.4.2 extension; unverified, dcap-qvl checks it).
        expected_report_data: the 64 bytes REPORTDATA must equal.
        produced_at: when the evidence was produced (for ``max_evidence_age``).
        tee: the TEE type the quote must be; None: the type its header states
            (SGX v3, TDX v4/v5), which the policy's measurements then pin.

    Returns:
        A callable raising an ``AppraisalError`` subclass when the policy refuses.
    """
    def verify(quote: bytes, now: dt.datetime) -> DcapVerdict:
        kind: TeeType = tee if tee is not None else _quote_tee(quote, policy.limits)
        evidence = Evidence(tee=kind, quote=quote, collateral=collateral, produced_at=produced_at)
        result = policy.appraise(evidence, expected_report_data=expected_report_data,
                                 service=service, now=now)
        return _verdict(result.tcb_status, result.advisory_ids, result.measurements,
                        result.report_data)

    return verify


def _quote_tee(quote: bytes, limits: Limits) -> TeeType:
    return "sgx" if isinstance(parse_quote(quote, limits), SgxQuote) else "tdx"


def unverified_certificate_tee(cert_der: bytes, limits: Limits | None = None) -> TeeType | None:
    """The TEE type of the quote in a certificate's RA-TLS extension (UNVERIFIED), or None.

    For choosing which checks apply only (a TDX node has no Teaclave profile);
    the appraisal that follows must pin the type again (enclave_info lists
    ``mrtd`` for TDX services, ``mr_enclave`` for SGX ones).

    Raises:
        CertificateFormatError: the certificate or the extension is malformed.
    """
    limits = limits if limits is not None else Limits()
    certificate = _load_certificate(cert_der, limits)
    try:
        extension = certificate.extensions.get_extension_for_oid(
            x509.ObjectIdentifier(RATLS_EVIDENCE_OID))
    except x509.ExtensionNotFound:
        return None
    except ValueError as e:
        raise CertificateFormatError("extensions-invalid", "malformed certificate extension") from e
    if not isinstance(extension.value, x509.UnrecognizedExtension):
        raise CertificateFormatError("ratls-extension-missing", "unexpected extension type")
    quote = parse_ratls_evidence(extension.value.value, limits).quote
    try:
        tee, _ = unverified_report_data(quote)
    except EvidenceFormatError as e:
        raise CertificateFormatError("ratls-quote-unsupported", str(e)) from e
    return "sgx" if tee == "sgx" else "tdx"


def certificate_collateral(cert_der: bytes, limits: Limits | None = None) -> bytes | None:
    """The collateral carried in a certificate's 2.23.133.5.4.2 extension (unverified), or None.

    Raises:
        CertificateFormatError: the certificate or the extension is malformed or too large.
    """
    limits = limits if limits is not None else Limits()
    certificate = _load_certificate(cert_der, limits)
    try:
        extension = certificate.extensions.get_extension_for_oid(
            x509.ObjectIdentifier(RATLS_ENDORSEMENT_OID))
    except x509.ExtensionNotFound:
        return None
    except ValueError as e:
        raise CertificateFormatError("extensions-invalid", "malformed certificate extension") from e
    if not isinstance(extension.value, x509.UnrecognizedExtension):
        raise CertificateFormatError("ratls-tag-unsupported", "unexpected endorsement extension")
    return parse_ratls_endorsements(extension.value.value, limits)


def verify_ratls_with_policy(
    cert_der: bytes,
    policy: AppraisalPolicy,
    *,
    service: str,
    now: dt.datetime,
    collateral: bytes | None = None,
) -> VerifiedPeer:
    """Verify a peer's RA-TLS certificate through the full appraisal policy.

    The quote in 2.23.133.5.4.9 (SGX v3, TDX v4 or v5: the TEE type is the
    quote's own) is appraised by ``policy`` for ``service``
    (root, measurements, TCB status, debug, age from the certificate's
    not-before), with the collateral in 2.23.133.5.4.2 unless ``collateral`` is
    given; ``verify_ratls_certificate`` checks the certificate around it
    (validity, ``pubkey-hash``, REPORTDATA = the key's X‖Y).

    Raises:
        RaTlsError: a certificate-level check failed (specific ``reason``).
        AppraisalError: the policy refused the evidence.
    """
    limits = policy.limits
    certificate = _load_certificate(cert_der, limits)
    key = certificate.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise EvidenceBindingError("key-not-p256", "the certificate key is not ECDSA P-256")
    if collateral is None:
        collateral = certificate_collateral(cert_der, limits)
    if collateral is None:
        raise CertificateFormatError("ratls-collateral-missing", "no collateral in certificate")
    verify = policy_quote_verifier(
        policy, service=service, collateral=collateral, expected_report_data=tls_report_data(key),
        produced_at=certificate.not_valid_before_utc)
    return verify_ratls_certificate(cert_der, verify, now,
                                    allowed_statuses=policy.allowed_tcb_statuses, limits=limits)
