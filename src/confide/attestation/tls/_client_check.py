"""Client-side checks of a peer's attested certificate (pure: bytes, roots and time in).

``verify_teaclave_certificate`` performs exactly the checks of the unmodified
Teaclave Python SDK (spec §4.2), in its order, and — with ``strict=True``, the
default — the checks the SDK skips: certificate validity, the attestation
extension's OID, report ``version == 4``, an allowed quote status, report
freshness and the enclave DEBUG bit.

``verify_ratls_certificate`` checks the interoperable RA-TLS profile
(2.23.133.5.4.9) with an injected quote verifier.

Both return a :class:`VerifiedPeer` (what to pin) or raise a ``RaTlsError``
subclass whose ``reason`` names the failed check.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ...config import Limits
from .._errors import (
    CertificateFormatError,
    EvidenceBindingError,
    EvidenceError,
    MeasurementMismatchError,
    ReportError,
)
from ._ratls_cert import RATLS_EVIDENCE_OID, parse_ratls_evidence, spki_sha256
from ._ratls_types import VerifyQuote
from ._teaclave_report import (
    TEACLAVE_EXTENSION_OID,
    UnverifiedEndorsement,
    parse_report,
    parse_teaclave_extension,
    tls_report_data,
)

__all__ = [
    "VerifiedPeer",
    "verify_endorsement",
    "verify_ratls_certificate",
    "verify_teaclave_certificate",
]

_DEFAULT_MAX_REPORT_AGE = dt.timedelta(hours=24)  # Teaclave's Rust verifier: 24 h
_DEFAULT_MAX_CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class VerifiedPeer:
    """A peer whose certificate passed verification: pin ``certificate_sha256``."""

    certificate_der: bytes
    certificate_sha256: bytes
    public_key: ec.EllipticCurvePublicKey
    mr_enclave: bytes
    mr_signer: bytes
    status: str | None
    report_timestamp: dt.datetime | None
    advisories: tuple[str, ...]


def _load_certificate(der: bytes, limits: Limits) -> x509.Certificate:
    if len(der) > limits.max_certificate_bytes:
        raise CertificateFormatError("certificate-too-large", f"certificate is {len(der)} bytes")
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as e:
        raise CertificateFormatError("certificate-invalid", "not a DER X.509 certificate") from e


def _check_validity(certificate: x509.Certificate, now: dt.datetime, what: str) -> None:
    if now < certificate.not_valid_before_utc:
        raise CertificateFormatError(f"{what}-not-yet-valid", f"{what} not valid before {now}")
    if now > certificate.not_valid_after_utc:
        raise CertificateFormatError(f"{what}-expired", f"{what} expired at {now}")


def _extensions(certificate: x509.Certificate) -> x509.Extensions:
    try:
        return certificate.extensions
    except ValueError as e:
        raise CertificateFormatError("extensions-invalid", "malformed certificate extension") from e


def _p256_key(certificate: x509.Certificate) -> ec.EllipticCurvePublicKey:
    key = certificate.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise EvidenceBindingError("key-not-p256", "the certificate key is not ECDSA P-256")
    return key


def _verify_issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except (x509.ExtensionNotFound, ValueError):
        return False
    return constraints.value.ca


def _verify_chain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    root: x509.Certificate,
    now: dt.datetime,
    max_depth: int,
) -> None:
    """Build a path leaf → intermediates → root, checking signatures and validity at ``now``."""
    _check_validity(root, now, "report-root")
    current = leaf
    for _ in range(max_depth + 1):
        _check_validity(current, now, "report-signer")
        if current.issuer == root.subject and _verify_issued_by(current, root):
            return
        parent = next(
            (
                c
                for c in intermediates
                if c.subject == current.issuer and _is_ca(c) and _verify_issued_by(current, c)
            ),
            None,
        )
        if parent is None:
            break
        current = parent
    raise ReportError("report-signer-untrusted", "the report signer does not chain to the AS root")


def verify_endorsement(
    endorsement: UnverifiedEndorsement,
    as_root_der: bytes,
    now: dt.datetime,
    limits: Limits,
) -> None:
    """Check that ``certs[0]`` chains to the AS root at ``now`` and signed ``report``.

    Raises:
        ReportError: ``report-signer-untrusted``, ``report-signer-expired``,
            ``report-signer-key-unsupported``, ``report-signature-invalid``.
        CertificateFormatError: a certificate in the chain does not parse.
    """
    root = _load_certificate(as_root_der, limits)
    chain = [_load_certificate(der, limits) for der in endorsement.certs]
    try:
        _verify_chain(chain[0], chain[1:], root, now, limits.max_report_chain_certs)
    except CertificateFormatError as e:
        raise ReportError(e.reason, str(e)) from e
    signer_key = chain[0].public_key()
    try:
        if isinstance(signer_key, rsa.RSAPublicKey):
            signer_key.verify(
                endorsement.signature, endorsement.report, padding.PKCS1v15(), hashes.SHA256()
            )
        elif isinstance(signer_key, ec.EllipticCurvePublicKey):
            signer_key.verify(endorsement.signature, endorsement.report, ec.ECDSA(hashes.SHA256()))
        else:
            raise ReportError("report-signer-key-unsupported", "signer key is not RSA or EC")
    except InvalidSignature as e:
        raise ReportError("report-signature-invalid", "the report signature does not verify") from e


def _check_measurements(
    mr_enclave: bytes,
    mr_signer: bytes,
    enclave_info: Mapping[str, Mapping[str, str]],
    service_table: str,
) -> None:
    expected = enclave_info.get(service_table)
    if expected is None:
        raise MeasurementMismatchError("service-unknown", f"no [{service_table}] in enclave_info")
    if mr_enclave.hex() != str(expected.get("mr_enclave", "")).lower():
        raise MeasurementMismatchError("mr-enclave-mismatch", f"MRENCLAVE {mr_enclave.hex()}")
    if mr_signer.hex() != str(expected.get("mr_signer", "")).lower():
        raise MeasurementMismatchError("mr-signer-mismatch", f"MRSIGNER {mr_signer.hex()}")


def verify_teaclave_certificate(
    cert_der: bytes,
    *,
    as_root_der: bytes,
    enclave_info: Mapping[str, Mapping[str, str]],
    service_table: str,
    now: dt.datetime,
    strict: bool = True,
    max_report_age: dt.timedelta = _DEFAULT_MAX_REPORT_AGE,
    max_clock_skew: dt.timedelta = _DEFAULT_MAX_CLOCK_SKEW,
    allowed_statuses: Collection[str] = frozenset({"OK"}),
    allow_debug: bool = False,
    limits: Limits | None = None,
) -> VerifiedPeer:
    """Verify a Teaclave-profile certificate as the Teaclave SDK does, and more when strict.

    SDK checks (always, in the SDK's order): the first extension parses as
    ``{report, signature, certs}``; ``certs[0]`` chains to ``as_root_der`` at
    ``now``; the signature over ``report`` verifies; the quote body is 432
    bytes; REPORTDATA equals the certificate key's X‖Y; MRENCLAVE and MRSIGNER
    equal ``enclave_info[service_table]``.

    Strict checks (``strict=True``): the certificate is valid at ``now``; the
    first extension has OID 2.16.840.1.113730.1.13; ``version == 4``; the
    status is in ``allowed_statuses``; ``now - timestamp <= max_report_age``
    (and the report is not from the future beyond ``max_clock_skew``); the
    enclave is not a DEBUG enclave unless ``allow_debug``.

    Args:
        cert_der: the peer's leaf certificate (unverified input).
        as_root_der: the attestation report service root the caller trusts.
        enclave_info: ``{table: {"mr_enclave": hex, "mr_signer": hex}}``.
        service_table: e.g. ``"teaclave_frontend_service"``.
        now: time of the decision.
        strict: also run the checks the SDK skips.
        max_report_age: freshness bound (strict only).
        max_clock_skew: tolerated report timestamp in the future (strict only).
        allowed_statuses: accepted ``isvEnclaveQuoteStatus`` values (strict only).
        allow_debug: accept an enclave with the DEBUG attribute (strict only).
        limits: size caps.

    Raises:
        RaTlsError: a subclass with a specific ``reason``.
    """
    limits = limits if limits is not None else Limits()
    certificate = _load_certificate(cert_der, limits)
    if strict:
        _check_validity(certificate, now, "certificate")
    extensions = list(_extensions(certificate))
    if not extensions:
        raise CertificateFormatError("attestation-extension-missing", "no extension")
    first = extensions[0]
    if not isinstance(first.value, x509.UnrecognizedExtension) or (
        strict and first.oid.dotted_string != TEACLAVE_EXTENSION_OID
    ):
        raise CertificateFormatError(
            "attestation-extension-not-first", f"first extension is {first.oid.dotted_string}"
        )
    endorsement = parse_teaclave_extension(first.value.value, limits)
    verify_endorsement(endorsement, as_root_der, now, limits)
    report = parse_report(endorsement.report, limits)
    body = report.quote_body
    if not hmac.compare_digest(body.report_data, tls_report_data(_p256_key(certificate))):
        raise EvidenceBindingError("report-data-mismatch", "REPORTDATA is not the key's X‖Y")
    _check_measurements(body.mr_enclave, body.mr_signer, enclave_info, service_table)
    if strict:
        if report.version != 4:
            raise ReportError("report-version-invalid", f"report version {report.version}")
        if report.status not in allowed_statuses:
            raise EvidenceError("quote-status-refused", f"quote status {report.status}")
        if report.timestamp is None:
            raise ReportError("report-timestamp-invalid", "report has no timestamp")
        if now - report.timestamp > max_report_age:
            raise EvidenceError("report-stale", f"report from {report.timestamp.isoformat()}")
        if report.timestamp - now > max_clock_skew:
            raise EvidenceError("report-from-future", f"report from {report.timestamp.isoformat()}")
        if body.debug and not allow_debug:
            raise EvidenceError("debug-enclave-refused", "the enclave runs in DEBUG mode")
    return VerifiedPeer(
        certificate_der=bytes(cert_der),
        certificate_sha256=hashlib.sha256(cert_der).digest(),
        public_key=_p256_key(certificate),
        mr_enclave=body.mr_enclave,
        mr_signer=body.mr_signer,
        status=report.status,
        report_timestamp=report.timestamp,
        advisories=report.advisories,
    )


def verify_ratls_certificate(
    cert_der: bytes,
    verify_quote: VerifyQuote,
    now: dt.datetime,
    *,
    enclave_info: Mapping[str, Mapping[str, str]] | None = None,
    service_table: str | None = None,
    allowed_statuses: Collection[str] = frozenset({"UpToDate"}),
    expected_nonce: bytes | None = None,
    limits: Limits | None = None,
) -> VerifiedPeer:
    """Verify the interoperable RA-TLS profile (extension 2.23.133.5.4.9).

    Checks: the certificate is valid at ``now``; the evidence decodes; its
    ``pubkey-hash`` claim is SHA-256 (alg 1) of the certificate's SPKI; the
    ``nonce`` claim equals ``expected_nonce`` when one is expected;
    ``verify_quote(quote, now)`` accepts the quote (its own errors propagate);
    the verified REPORTDATA is the key's X‖Y; the TCB status is allowed; the
    measurements match ``enclave_info[service_table]`` when given.

    Raises:
        RaTlsError: a subclass with a specific ``reason``; the verifier's own
            errors propagate unchanged.
    """
    limits = limits if limits is not None else Limits()
    certificate = _load_certificate(cert_der, limits)
    _check_validity(certificate, now, "certificate")
    try:
        extension = _extensions(certificate).get_extension_for_oid(
            x509.ObjectIdentifier(RATLS_EVIDENCE_OID)
        )
    except x509.ExtensionNotFound as e:
        raise CertificateFormatError("ratls-extension-missing", "no RA-TLS evidence") from e
    if not isinstance(extension.value, x509.UnrecognizedExtension):
        raise CertificateFormatError("ratls-extension-missing", "unexpected extension type")
    evidence = parse_ratls_evidence(extension.value.value, limits)
    public_key = _p256_key(certificate)
    if evidence.pubkey_hash_alg != 1 or not hmac.compare_digest(
        evidence.pubkey_hash, spki_sha256(public_key)
    ):
        raise EvidenceBindingError("pubkey-hash-mismatch", "pubkey-hash is not SHA-256 of the SPKI")
    if expected_nonce is not None and (
        evidence.nonce is None or not hmac.compare_digest(evidence.nonce, expected_nonce)
    ):
        raise EvidenceBindingError("nonce-mismatch", "the nonce claim is not the expected nonce")
    verdict = verify_quote(evidence.quote, now)
    if not hmac.compare_digest(bytes(verdict.report_data), tls_report_data(public_key)):
        raise EvidenceBindingError("report-data-mismatch", "REPORTDATA is not the key's X‖Y")
    if verdict.status not in allowed_statuses:
        raise EvidenceError("quote-status-refused", f"TCB status {verdict.status}")
    if enclave_info is not None:
        if service_table is None:
            raise ValueError("service_table is required with enclave_info")
        _check_measurements(
            bytes(verdict.mr_enclave), bytes(verdict.mr_signer), enclave_info, service_table
        )
    return VerifiedPeer(
        certificate_der=bytes(cert_der),
        certificate_sha256=hashlib.sha256(cert_der).digest(),
        public_key=public_key,
        mr_enclave=bytes(verdict.mr_enclave),
        mr_signer=bytes(verdict.mr_signer),
        status=verdict.status,
        report_timestamp=None,
        advisories=tuple(verdict.advisories),
    )
