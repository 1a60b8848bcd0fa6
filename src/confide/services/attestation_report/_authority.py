"""The attestation report service core: sign IAS-v4-style reports over verified quotes.

This is the pure part of confide's Teaclave-compatible attestation report
service (the HTTP endpoint is ``_http``). A report is produced only for
a quote that the injected verifier accepted; the report states the verifier's
TCB status in IAS spelling and carries the 432-byte quote body.

Keys: a report-service root CA (RSA-3072, self-signed, 10 years) and a
report-signing certificate (RSA-3072, 2 years) issued by it. The root
certificate is what Teaclave clients are given as "AS root". Private keys are
persisted only sealed (an injected sealer), certificates in PEM.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from confide._atomic import write_atomic
from confide.attestation import EndorsedReport, QuoteVerdict, ReportServiceError
from confide.attestation.evidence import TEE_TYPE_SGX
from confide.attestation.tls import QUOTE_BODY_BYTES, encode_report, ias_status_of

__all__ = ["ReportAuthority", "SealerLike", "make_report"]

_RSA_BITS = 3072
_ROOT_VALIDITY = dt.timedelta(days=3650)
_SIGNING_VALIDITY = dt.timedelta(days=730)
_RENEW_SIGNING_BEFORE = dt.timedelta(days=30)
_ROOT_CERT = "as_root_cert.pem"
_ROOT_KEY = "as_root_key.sealed"
_SIGNING_CERT = "as_signing_cert.pem"
_SIGNING_KEY = "as_signing_key.sealed"


class SealerLike(Protocol):
    """Seals secrets before they touch the disk (``confide.keys.Sealer`` fits)."""

    def seal(self, plaintext: bytes, context: bytes) -> bytes: ...

    def unseal(self, sealed: bytes, context: bytes) -> bytes: ...


def make_report(
    quote: bytes,
    verdict: QuoteVerdict,
    signing_key: rsa.RSAPrivateKey,
    now: dt.datetime,
    *,
    report_id: str | None = None,
) -> tuple[bytes, bytes]:
    """Produce and sign the IAS-v4-style report for a quote the verifier accepted.

    Args:
        quote: the full quote that ``verdict`` is about.
        verdict: the verifier's verdict (status in dcap-qvl spelling).
        signing_key: the report-signing RSA key.
        now: the report timestamp.
        report_id: the report ``id``; a random UUID (32 hex digits) by default.

    Returns:
        ``(report_bytes, signature)``: RSA PKCS#1 v1.5 SHA-256 over the exact bytes.

    Raises:
        ReportServiceError: ``quote-too-short``, ``quote-not-sgx`` (the report
            format has an SGX quote body; TDX nodes are attested through RA-TLS)
            or ``verdict-quote-mismatch``.
        ReportError: ``unknown-tcb-status`` for a status with no IAS mapping.
    """
    if len(quote) < QUOTE_BODY_BYTES:
        raise ReportServiceError("quote-too-short", f"quote is {len(quote)} bytes")
    if int.from_bytes(quote[4:8], "little") != TEE_TYPE_SGX:
        raise ReportServiceError("quote-not-sgx", "Teaclave reports cover SGX quotes only")
    if bytes(verdict.report_data) != quote[368:432]:
        raise ReportServiceError("verdict-quote-mismatch", "the verdict is for another quote")
    report = encode_report(
        report_id=report_id if report_id is not None else uuid.uuid4().hex,
        timestamp=now,
        status=ias_status_of(verdict.status),
        quote_body=quote[:QUOTE_BODY_BYTES],
        advisories=tuple(verdict.advisories),
    )
    signature = signing_key.sign(report, padding.PKCS1v15(), hashes.SHA256())
    return report, signature


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "confide"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _issue_signing_cert(
    root_key: rsa.RSAPrivateKey,
    root_cert: x509.Certificate,
    signing_key: rsa.RSAPrivateKey,
    now: dt.datetime,
    dns_names: Sequence[str],
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .issuer_name(root_cert.subject)
        .subject_name(_name("confide attestation report signing"))
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _SIGNING_VALIDITY)
        .public_key(signing_key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
            critical=False,
        )
    )
    if dns_names:
        # Like Teaclave's reference server, the signing certificate can double as
        # the report service's TLS server certificate.
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
        )
    return builder.sign(root_key, hashes.SHA256())


def _new_root(now: dt.datetime) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
    name = _name("confide attestation report root CA")
    cert = (
        x509.CertificateBuilder()
        .issuer_name(name)
        .subject_name(name)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _ROOT_VALIDITY)
        .public_key(key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _pkcs8(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_rsa(der: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_der_private_key(der, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ReportServiceError("state-invalid", "sealed key is not an RSA key")
    return key


@dataclass(frozen=True)
class ReportAuthority:
    """The report service's root CA and current report-signing key."""

    root_key: rsa.RSAPrivateKey
    root_certificate: x509.Certificate
    signing_key: rsa.RSAPrivateKey
    signing_certificate: x509.Certificate

    @classmethod
    def create(
        cls, now: dt.datetime, *, dns_names: Sequence[str] = ("localhost",)
    ) -> ReportAuthority:
        """A fresh authority held in memory only (tests, ephemeral deployments)."""
        root_key, root_cert = _new_root(now)
        signing_key = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
        signing_cert = _issue_signing_cert(root_key, root_cert, signing_key, now, dns_names)
        return cls(root_key, root_cert, signing_key, signing_cert)

    @classmethod
    def load_or_create(
        cls,
        state_dir: Path,
        sealer: SealerLike,
        now: dt.datetime,
        *,
        dns_names: Sequence[str] = ("localhost",),
    ) -> ReportAuthority:
        """Load the authority from ``state_dir``, creating (or renewing) what is missing.

        The root is created once and kept; the signing certificate is re-issued
        when it is within 30 days of expiry. Private keys are stored sealed.

        Raises:
            ReportServiceError: ``state-invalid`` when stored state is inconsistent.
        """
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        root_cert_path = state_dir / _ROOT_CERT
        root_key_path = state_dir / _ROOT_KEY
        if root_cert_path.exists() and root_key_path.exists():
            root_cert = x509.load_pem_x509_certificate(root_cert_path.read_bytes())
            root_key = _load_rsa(sealer.unseal(root_key_path.read_bytes(), _ROOT_KEY.encode()))
            if root_cert.public_key() != root_key.public_key():
                raise ReportServiceError(
                    "state-invalid", "root key does not match root certificate"
                )
        else:
            root_key, root_cert = _new_root(now)
            write_atomic(root_key_path, sealer.seal(_pkcs8(root_key), _ROOT_KEY.encode()))
            write_atomic(root_cert_path, root_cert.public_bytes(serialization.Encoding.PEM))
        signing_cert_path = state_dir / _SIGNING_CERT
        signing_key_path = state_dir / _SIGNING_KEY
        if signing_cert_path.exists() and signing_key_path.exists():
            signing_cert = x509.load_pem_x509_certificate(signing_cert_path.read_bytes())
            signing_key = _load_rsa(
                sealer.unseal(signing_key_path.read_bytes(), _SIGNING_KEY.encode())
            )
            if signing_cert.public_key() != signing_key.public_key():
                raise ReportServiceError("state-invalid", "signing key does not match certificate")
            fresh = now + _RENEW_SIGNING_BEFORE < signing_cert.not_valid_after_utc
            if fresh and signing_cert.issuer == root_cert.subject:
                return cls(root_key, root_cert, signing_key, signing_cert)
        signing_key = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
        signing_cert = _issue_signing_cert(root_key, root_cert, signing_key, now, dns_names)
        write_atomic(signing_key_path, sealer.seal(_pkcs8(signing_key), _SIGNING_KEY.encode()))
        write_atomic(signing_cert_path, signing_cert.public_bytes(serialization.Encoding.PEM))
        return cls(root_key, root_cert, signing_key, signing_cert)

    @property
    def root_der(self) -> bytes:
        """DER of the root certificate: give it to clients as the AS root."""
        return self.root_certificate.public_bytes(serialization.Encoding.DER)

    @property
    def signing_chain_der(self) -> tuple[bytes, ...]:
        """``certs`` for the Teaclave extension: the signing certificate (the root is not sent)."""
        return (self.signing_certificate.public_bytes(serialization.Encoding.DER),)

    def signing_chain_pem(self) -> bytes:
        """PEM of the signing chain, as sent in the signing-certificate response header."""
        return self.signing_certificate.public_bytes(serialization.Encoding.PEM)

    def endorse(self, quote: bytes, verdict: QuoteVerdict, now: dt.datetime) -> EndorsedReport:
        """Report and signature for a verified quote, ready for the certificate extension."""
        report, signature = make_report(quote, verdict, self.signing_key, now)
        return EndorsedReport(report=report, signature=signature, certs=self.signing_chain_der)
