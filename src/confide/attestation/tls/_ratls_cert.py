"""Attested node certificates: one self-signed certificate, two evidence profiles.

Profile 1 (Teaclave compatibility, read by the unmodified Teaclave SDK): the
FIRST extension is OID 2.16.840.1.113730.1.13, non-critical, holding the raw
JSON ``{report, signature, certs}`` (see ``_teaclave_report``).

Profile 2 (interoperable RA-TLS): extension OID 2.23.133.5.4.9
(``tcg-dice-conceptual-message-wrapper``), non-critical, holding the CBOR::

    #6.1733889([ bstr quote, bstr claims ])          ; tag 0x1A7501: Intel TEE quote
    claims = { "pubkey-hash": bstr .cbor [ 1, bstr ] ; hash-alg-id 1 = sha-256 of the
                                                     ; certificate's SubjectPublicKeyInfo DER
               ? "nonce": bstr }

Optionally extension 2.23.133.5.4.2 (``tcg-dice-endorsement-manifest``),
non-critical, holds ``#6.1733889(bstr collateral)`` — the quote's collateral in
dcap-qvl ``QuoteCollateralV3`` JSON — so a verifier can run offline.

Both profiles carry the SAME quote, whose REPORTDATA is X‖Y of the
certificate's P-256 key (Teaclave's binding). Note: librats/rats-tls put a
hash of the claims buffer into REPORTDATA instead; a verifier of this
certificate must apply the X‖Y rule (``_client_check.verify_ratls_certificate``).

The certificate itself copies Teaclave's shape: X.509 v3, serial 1,
ecdsa-with-SHA256, issuer ``CN=Teaclave``, subject ``CN=CN=Teaclave`` (sic),
90 days of validity.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ...config import Limits
from .._errors import CertificateFormatError, EvidenceBindingError, EvidenceFormatError
from ..evidence import unverified_report_data
from ._ratls_types import GetQuote
from ._teaclave_report import (
    QUOTE_BODY_BYTES,
    TEACLAVE_EXTENSION_OID,
    encode_teaclave_extension,
    parse_report,
    tls_report_data,
)

__all__ = [
    "CBOR_TAG_INTEL_TEE_QUOTE",
    "RATLS_ENDORSEMENT_OID",
    "RATLS_EVIDENCE_OID",
    "AttestedCertificate",
    "EndorsedReport",
    "UnverifiedRaTlsEvidence",
    "build_attested_certificate",
    "encode_ratls_endorsements",
    "encode_ratls_evidence",
    "issue_attested_certificate",
    "parse_ratls_endorsements",
    "parse_ratls_evidence",
    "renewal_due",
    "spki_sha256",
]

RATLS_EVIDENCE_OID = "2.23.133.5.4.9"
RATLS_ENDORSEMENT_OID = "2.23.133.5.4.2"
CBOR_TAG_INTEL_TEE_QUOTE = 0x1A7501  # librats / rats-tls "Intel TEE quote" evidence tag
_HASH_ALG_SHA256 = 1  # IANA named-information hash algorithm id
_CLAIM_PUBKEY_HASH = "pubkey-hash"
_CLAIM_NONCE = "nonce"
_VALIDITY = dt.timedelta(days=90)
_ATTESTATION_VALIDITY = dt.timedelta(hours=1)  # Teaclave re-attests every 3600 s


@dataclass(frozen=True)
class EndorsedReport:
    """A report service's answer: report bytes, its signature, the signer chain (no root)."""

    report: bytes
    signature: bytes
    certs: tuple[bytes, ...]


@dataclass(frozen=True)
class UnverifiedRaTlsEvidence:
    """The decoded 2.23.133.5.4.9 extension; nothing in it is verified yet."""

    quote: bytes
    pubkey_hash_alg: int
    pubkey_hash: bytes
    nonce: bytes | None


@dataclass(frozen=True)
class AttestedCertificate:
    """A node's TLS key and its attested certificate. The key never leaves the node."""

    private_key: ec.EllipticCurvePrivateKey
    certificate_der: bytes

    @property
    def certificate(self) -> x509.Certificate:
        """The parsed certificate."""
        return x509.load_der_x509_certificate(self.certificate_der)

    def certificate_pem(self) -> bytes:
        """PEM of the certificate (for grpcio server credentials)."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def private_key_pem(self) -> bytes:
        """Unencrypted PKCS#8 PEM, for in-memory grpcio credentials only; never write it out."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def spki_sha256(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """SHA-256 of the DER SubjectPublicKeyInfo (algorithm + subjectPublicKey)."""
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).digest()


def encode_ratls_evidence(
    quote: bytes, public_key: ec.EllipticCurvePublicKey, nonce: bytes | None = None
) -> bytes:
    """CBOR value of the 2.23.133.5.4.9 extension (layout in the module docstring)."""
    claims: dict[str, bytes] = {
        _CLAIM_PUBKEY_HASH: cbor2.dumps([_HASH_ALG_SHA256, spki_sha256(public_key)])
    }
    if nonce is not None:
        claims[_CLAIM_NONCE] = nonce
    return cbor2.dumps(cbor2.CBORTag(CBOR_TAG_INTEL_TEE_QUOTE, [quote, cbor2.dumps(claims)]))


def encode_ratls_endorsements(collateral: bytes) -> bytes:
    """CBOR value of the 2.23.133.5.4.2 extension: the tagged collateral bytes."""
    return cbor2.dumps(cbor2.CBORTag(CBOR_TAG_INTEL_TEE_QUOTE, collateral))


def _cbor_loads(raw: bytes, what: str) -> object:
    try:
        return cbor2.loads(raw)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError) as e:
        raise CertificateFormatError("ratls-cbor-invalid", f"{what} is not valid CBOR") from e


def parse_ratls_evidence(raw: bytes, limits: Limits) -> UnverifiedRaTlsEvidence:
    """Decode the 2.23.133.5.4.9 extension value.

    Raises:
        CertificateFormatError: ``extension-too-large``, ``ratls-cbor-invalid``,
            ``ratls-tag-unsupported``, ``ratls-claims-invalid``.
    """
    if len(raw) > limits.max_attestation_extension_bytes:
        raise CertificateFormatError("extension-too-large", f"RA-TLS evidence is {len(raw)} bytes")
    item = _cbor_loads(raw, "RA-TLS evidence")
    if not isinstance(item, cbor2.CBORTag) or item.tag != CBOR_TAG_INTEL_TEE_QUOTE:
        raise CertificateFormatError("ratls-tag-unsupported", "evidence is not an Intel TEE quote")
    value = item.value
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(isinstance(v, bytes) for v in value)
    ):
        raise CertificateFormatError("ratls-claims-invalid", "evidence is not [quote, claims]")
    quote, claims_raw = value
    if len(quote) > limits.max_ratls_quote_bytes:
        raise CertificateFormatError("extension-too-large", f"quote is {len(quote)} bytes")
    claims = _cbor_loads(claims_raw, "claims")
    if not isinstance(claims, dict):
        raise CertificateFormatError("ratls-claims-invalid", "claims are not a map")
    hash_entry_raw = claims.get(_CLAIM_PUBKEY_HASH)
    if not isinstance(hash_entry_raw, bytes):
        raise CertificateFormatError("ratls-claims-invalid", "pubkey-hash claim missing")
    hash_entry = _cbor_loads(hash_entry_raw, "pubkey-hash")
    if (
        not isinstance(hash_entry, (list, tuple))
        or len(hash_entry) != 2
        or type(hash_entry[0]) is not int
        or not isinstance(hash_entry[1], bytes)
    ):
        raise CertificateFormatError("ratls-claims-invalid", "pubkey-hash is not [alg, hash]")
    nonce = claims.get(_CLAIM_NONCE)
    if nonce is not None and not isinstance(nonce, bytes):
        raise CertificateFormatError("ratls-claims-invalid", "nonce is not a byte string")
    return UnverifiedRaTlsEvidence(
        quote=quote, pubkey_hash_alg=hash_entry[0], pubkey_hash=hash_entry[1], nonce=nonce
    )


def parse_ratls_endorsements(raw: bytes, limits: Limits) -> bytes:
    """Decode the 2.23.133.5.4.2 extension value into the collateral bytes.

    Raises:
        CertificateFormatError: ``extension-too-large``, ``ratls-cbor-invalid``,
            ``ratls-tag-unsupported``.
    """
    if len(raw) > limits.max_ratls_collateral_bytes:
        raise CertificateFormatError("extension-too-large", f"collateral is {len(raw)} bytes")
    item = _cbor_loads(raw, "RA-TLS endorsements")
    if (
        not isinstance(item, cbor2.CBORTag)
        or item.tag != CBOR_TAG_INTEL_TEE_QUOTE
        or not isinstance(item.value, bytes)
    ):
        raise CertificateFormatError("ratls-tag-unsupported", "endorsements are not tagged bytes")
    return item.value


def _check_binding(
    public_key: ec.EllipticCurvePublicKey, quote: bytes, endorsement: EndorsedReport | None
) -> None:
    if len(quote) < QUOTE_BODY_BYTES:
        raise EvidenceBindingError("quote-too-short", f"quote is {len(quote)} bytes")
    try:
        tee, report_data = unverified_report_data(quote)
    except EvidenceFormatError as e:
        raise EvidenceBindingError("quote-unsupported", str(e)) from e
    if report_data != tls_report_data(public_key):
        raise EvidenceBindingError("report-data-mismatch", "quote REPORTDATA is not the key X‖Y")
    if endorsement is not None:
        if tee != "sgx":
            raise EvidenceBindingError(
                "report-quote-mismatch", "Teaclave attestation reports cover SGX quotes only")
        report = parse_report(endorsement.report, Limits())
        if report.quote_body.raw != quote[:QUOTE_BODY_BYTES]:
            raise EvidenceBindingError("report-quote-mismatch", "the report is for another quote")


def build_attested_certificate(
    private_key: ec.EllipticCurvePrivateKey,
    quote: bytes,
    endorsement: EndorsedReport | None,
    now: dt.datetime,
    *,
    collateral: bytes | None = None,
    nonce: bytes | None = None,
    dns_names: Sequence[str] = (),
    validity: dt.timedelta = _VALIDITY,
) -> bytes:
    """Build the DER certificate carrying both evidence profiles.

    Args:
        private_key: the node's P-256 TLS key.
        quote: an SGX v3 or TDX v4/v5 quote whose REPORTDATA is the key's X‖Y.
        endorsement: the report service's answer for ``quote`` (SGX only: the
            Teaclave report format has no TDX body); ``None`` gives Teaclave's
            simulation-mode empty report (accepted only by clients running with
            ``SGX_MODE=SW``; a TDX node is attested through RA-TLS alone).
        now: issue time (not-before).
        collateral: optional quote collateral for the 2.23.133.5.4.2 extension.
        nonce: optional ``nonce`` claim.
        dns_names: optional SAN DNS names (placed after the evidence extensions),
            handy for pinning with grpcio's target-name override.
        validity: lifetime of the certificate (Teaclave: 90 days).

    Raises:
        EvidenceBindingError: the quote does not bind the key, or the report is
            for a different quote.
    """
    public_key = private_key.public_key()
    _check_binding(public_key, quote, endorsement)
    teaclave_json = (
        encode_teaclave_extension(endorsement.report, endorsement.signature, endorsement.certs)
        if endorsement is not None
        else encode_teaclave_extension(b"", b"", ())
    )
    not_before = now.astimezone(dt.UTC).replace(microsecond=0)
    builder = (
        x509.CertificateBuilder()
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Teaclave")]))
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CN=Teaclave")]))
        .serial_number(1)
        .not_valid_before(not_before)
        .not_valid_after(not_before + validity)
        .public_key(public_key)
        .add_extension(
            x509.UnrecognizedExtension(
                x509.ObjectIdentifier(TEACLAVE_EXTENSION_OID), teaclave_json
            ),
            critical=False,
        )
        .add_extension(
            x509.UnrecognizedExtension(
                x509.ObjectIdentifier(RATLS_EVIDENCE_OID),
                encode_ratls_evidence(quote, public_key, nonce),
            ),
            critical=False,
        )
    )
    if collateral is not None:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(
                x509.ObjectIdentifier(RATLS_ENDORSEMENT_OID), encode_ratls_endorsements(collateral)
            ),
            critical=False,
        )
    if dns_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
        )
    certificate = builder.sign(private_key, hashes.SHA256())
    return certificate.public_bytes(serialization.Encoding.DER)


def issue_attested_certificate(
    get_quote: GetQuote,
    endorse: Callable[[bytes], EndorsedReport] | None,
    now: dt.datetime,
    *,
    get_collateral: Callable[[bytes], bytes] | None = None,
    dns_names: Sequence[str] = (),
) -> AttestedCertificate:
    """Generate a fresh P-256 key in this node, attest it and build its certificate.

    Args:
        get_quote: the attester (REPORTDATA in, quote out).
        endorse: sends the quote to the attestation report service (in-process
            ``ReportAuthority.endorse`` or an HTTP client); ``None`` for the
            simulation-mode empty report.
        now: issue time.
        get_collateral: optional, fetches collateral for the quote to embed it.
        dns_names: optional SAN DNS names.
    """
    private_key = ec.generate_private_key(ec.SECP256R1())
    quote = get_quote(tls_report_data(private_key.public_key()))
    endorsement = endorse(quote) if endorse is not None else None
    collateral = get_collateral(quote) if get_collateral is not None else None
    der = build_attested_certificate(
        private_key, quote, endorsement, now, collateral=collateral, dns_names=dns_names
    )
    return AttestedCertificate(private_key=private_key, certificate_der=der)


def renewal_due(
    certificate_der: bytes,
    now: dt.datetime,
    *,
    attestation_validity: dt.timedelta = _ATTESTATION_VALIDITY,
) -> bool:
    """Whether a node must re-attest and re-issue its certificate at ``now``.

    True once ``attestation_validity`` (Teaclave: 3600 s) has passed since the
    certificate's not-before (its evidence is that old), when the certificate
    has expired, or when ``now`` is before not-before (the clock went back).
    """
    certificate = x509.load_der_x509_certificate(certificate_der)
    not_before = certificate.not_valid_before_utc
    not_after = certificate.not_valid_after_utc
    return now < not_before or now >= not_after or now >= not_before + attestation_validity
