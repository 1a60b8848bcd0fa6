"""confide's own attested certificates: shape, both profiles, and tampering."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from confide.attestation import (
    RATLS_ENDORSEMENT_OID,
    RATLS_EVIDENCE_OID,
    TEACLAVE_EXTENSION_OID,
    CertificateFormatError,
    EndorsedReport,
    EvidenceBindingError,
    EvidenceError,
    MeasurementMismatchError,
    ReportError,
    build_attested_certificate,
    renewal_due,
    tls_report_data,
    verify_ratls_certificate,
    verify_teaclave_certificate,
)
from confide.attestation.tls._ratls_cert import encode_ratls_evidence
from confide.attestation.tls._teaclave_report import encode_teaclave_extension
from confide.services.attestation_report import ReportAuthority

from ._fakes import (
    ENCLAVE_INFO,
    FAKE_MR_ENCLAVE,
    FAKE_MR_SIGNER,
    NOW,
    FakeQuoteRefused,
    FakeVerifier,
    attested_certificate,
    make_fake_quote,
)

TABLE = "teaclave_frontend_service"


def _teaclave(cert: bytes, authority: ReportAuthority, **kwargs: object) -> object:
    args: dict[str, object] = {
        "as_root_der": authority.root_der,
        "enclave_info": ENCLAVE_INFO,
        "service_table": TABLE,
        "now": NOW,
    }
    args.update(kwargs)
    return verify_teaclave_certificate(cert, **args)  # type: ignore[arg-type]


def test_certificate_has_teaclave_shape(authority: ReportAuthority) -> None:
    attested = attested_certificate(authority, NOW)
    cert = attested.certificate
    assert cert.version == x509.Version.v3
    assert cert.serial_number == 1
    assert cert.signature_algorithm_oid == x509.SignatureAlgorithmOID.ECDSA_WITH_SHA256
    assert cert.issuer.rfc4514_string() == "CN=Teaclave"
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "CN=Teaclave"
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=90)
    first, second = list(cert.extensions)[:2]
    assert first.oid.dotted_string == TEACLAVE_EXTENSION_OID and not first.critical
    assert second.oid.dotted_string == RATLS_EVIDENCE_OID and not second.critical
    document = json.loads(first.value.value)
    assert sorted(document) == ["certs", "report", "signature"]
    report = json.loads(bytes(document["report"]))
    assert sorted(report) == [
        "id",
        "isvEnclaveQuoteBody",
        "isvEnclaveQuoteStatus",
        "timestamp",
        "version",
    ]
    assert report["version"] == 4 and report["isvEnclaveQuoteStatus"] == "OK"
    # the self-signature is a normal, valid ECDSA signature (unlike Teaclave's)
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))


def test_ratls_extension_is_tagged_quote_and_pubkey_hash_claims(authority: ReportAuthority) -> None:
    attested = attested_certificate(authority, NOW)
    cert = attested.certificate
    raw = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(RATLS_EVIDENCE_OID))
    assert isinstance(raw.value, x509.UnrecognizedExtension)
    item = cbor2.loads(raw.value.value)
    assert item.tag == 0x1A7501
    quote, claims_raw = item.value
    assert quote[368:432] == tls_report_data(attested.private_key.public_key())
    claims = cbor2.loads(claims_raw)
    spki = attested.private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert cbor2.loads(claims["pubkey-hash"]) == [1, hashlib.sha256(spki).digest()]


def test_own_certificate_passes_strict_teaclave_checks(authority: ReportAuthority) -> None:
    attested = attested_certificate(authority, NOW)
    peer = _teaclave(attested.certificate_der, authority)
    assert peer.mr_enclave == FAKE_MR_ENCLAVE  # type: ignore[attr-defined]
    assert peer.certificate_sha256 == hashlib.sha256(attested.certificate_der).digest()  # type: ignore[attr-defined]


def test_own_certificate_passes_ratls_checks(authority: ReportAuthority) -> None:
    attested = attested_certificate(authority, NOW)
    verifier = FakeVerifier()
    peer = verify_ratls_certificate(
        attested.certificate_der, verifier, NOW, enclave_info=ENCLAVE_INFO, service_table=TABLE
    )
    assert peer.mr_signer == FAKE_MR_SIGNER
    assert verifier.calls and verifier.calls[0][1] == NOW


def test_collateral_extension_round_trips(authority: ReportAuthority) -> None:
    from confide.attestation.tls._ratls_cert import parse_ratls_endorsements
    from confide.config import Limits

    attested = attested_certificate(authority, NOW, collateral=b'{"fake":"collateral"}')
    ext = attested.certificate.extensions.get_extension_for_oid(
        x509.ObjectIdentifier(RATLS_ENDORSEMENT_OID)
    )
    assert isinstance(ext.value, x509.UnrecognizedExtension)
    assert parse_ratls_endorsements(ext.value.value, Limits()) == b'{"fake":"collateral"}'


def test_builder_refuses_quote_that_binds_another_key(authority: ReportAuthority) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    quote = make_fake_quote(tls_report_data(other.public_key()))
    with pytest.raises(EvidenceBindingError) as e:
        build_attested_certificate(key, quote, None, NOW)
    assert e.value.reason == "report-data-mismatch"


def _forge(
    key: ec.EllipticCurvePrivateKey,
    quote: bytes,
    endorsement: EndorsedReport,
    *,
    san_first: bool = False,
    not_before: dt.datetime = NOW,
) -> bytes:
    """Build a certificate bypassing the builder's own consistency checks (attacker view)."""
    teaclave = x509.UnrecognizedExtension(
        x509.ObjectIdentifier(TEACLAVE_EXTENSION_OID),
        encode_teaclave_extension(endorsement.report, endorsement.signature, endorsement.certs),
    )
    ratls = x509.UnrecognizedExtension(
        x509.ObjectIdentifier(RATLS_EVIDENCE_OID), encode_ratls_evidence(quote, key.public_key())
    )
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Teaclave")])
    builder = (
        x509.CertificateBuilder()
        .issuer_name(name)
        .subject_name(name)
        .serial_number(1)
        .not_valid_before(not_before)
        .not_valid_after(not_before + dt.timedelta(days=90))
        .public_key(key.public_key())
    )
    if san_first:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("evil.example")]), critical=False
        )
    builder = builder.add_extension(teaclave, critical=False).add_extension(ratls, critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _endorse(authority: ReportAuthority, quote: bytes, now: dt.datetime = NOW) -> EndorsedReport:
    return authority.endorse(quote, FakeVerifier()(quote, now), now)


def test_rejects_report_whose_reportdata_is_another_key(authority: ReportAuthority) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    stolen = make_fake_quote(tls_report_data(ec.generate_private_key(ec.SECP256R1()).public_key()))
    cert = _forge(key, stolen, _endorse(authority, stolen))
    with pytest.raises(EvidenceBindingError) as e:
        _teaclave(cert, authority)
    assert e.value.reason == "report-data-mismatch"
    with pytest.raises(EvidenceBindingError) as e2:
        verify_ratls_certificate(cert, FakeVerifier(), NOW)
    assert e2.value.reason == "report-data-mismatch"


def test_rejects_report_from_untrusted_signer(
    authority: ReportAuthority, other_authority: ReportAuthority
) -> None:
    attested = attested_certificate(other_authority, NOW)
    with pytest.raises(ReportError) as e:
        _teaclave(attested.certificate_der, authority)
    assert e.value.reason == "report-signer-untrusted"


def test_rejects_flipped_report_byte(authority: ReportAuthority) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    quote = make_fake_quote(tls_report_data(key.public_key()))
    good = _endorse(authority, quote)
    flipped = bytearray(good.report)
    flipped[10] ^= 0x01
    cert = _forge(key, quote, EndorsedReport(bytes(flipped), good.signature, good.certs))
    with pytest.raises(ReportError) as e:
        _teaclave(cert, authority)
    assert e.value.reason == "report-signature-invalid"


def test_rejects_wrong_measurement(authority: ReportAuthority) -> None:
    attested = attested_certificate(authority, NOW, mr_enclave=b"\xee" * 32)
    with pytest.raises(MeasurementMismatchError) as e:
        _teaclave(attested.certificate_der, authority)
    assert e.value.reason == "mr-enclave-mismatch"
    with pytest.raises(MeasurementMismatchError):
        verify_ratls_certificate(
            attested.certificate_der,
            FakeVerifier(),
            NOW,
            enclave_info=ENCLAVE_INFO,
            service_table=TABLE,
        )


def test_rejects_attestation_extension_not_first(authority: ReportAuthority) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    quote = make_fake_quote(tls_report_data(key.public_key()))
    cert = _forge(key, quote, _endorse(authority, quote), san_first=True)
    for strict in (True, False):
        with pytest.raises(CertificateFormatError) as e:
            _teaclave(cert, authority, strict=strict)
        assert e.value.reason == "attestation-extension-not-first"


def test_rejects_expired_certificate(authority: ReportAuthority) -> None:
    attested = attested_certificate(authority, NOW)
    later = NOW + dt.timedelta(days=91)
    with pytest.raises(CertificateFormatError) as e:
        _teaclave(
            attested.certificate_der, authority, now=later, max_report_age=dt.timedelta(days=365)
        )
    assert e.value.reason == "certificate-expired"
    with pytest.raises(CertificateFormatError) as e2:
        verify_ratls_certificate(attested.certificate_der, FakeVerifier(), later)
    assert e2.value.reason == "certificate-expired"


def test_rejects_stale_report(authority: ReportAuthority) -> None:
    attested = attested_certificate(authority, NOW)
    later = NOW + dt.timedelta(hours=25)
    with pytest.raises(EvidenceError) as e:
        _teaclave(attested.certificate_der, authority, now=later)
    assert e.value.reason == "report-stale"
    _teaclave(attested.certificate_der, authority, now=later, strict=False)  # the SDK would accept


def test_rejects_report_dated_in_the_future(authority: ReportAuthority) -> None:
    attested = attested_certificate(authority, NOW + dt.timedelta(hours=1))
    with pytest.raises(CertificateFormatError):  # the certificate itself is not yet valid
        _teaclave(attested.certificate_der, authority)


def test_rejects_status_not_allowed(authority: ReportAuthority) -> None:
    attested = attested_certificate(authority, NOW, status="OutOfDate")
    with pytest.raises(EvidenceError) as e:
        _teaclave(attested.certificate_der, authority)
    assert e.value.reason == "quote-status-refused"
    _teaclave(attested.certificate_der, authority, allowed_statuses={"OK", "OUT_OF_DATE"})


def test_rejects_debug_enclave_when_strict(authority: ReportAuthority) -> None:
    attested = attested_certificate(authority, NOW, debug=True)
    with pytest.raises(EvidenceError) as e:
        _teaclave(attested.certificate_der, authority)
    assert e.value.reason == "debug-enclave-refused"


def test_ratls_rejects_pubkey_hash_of_another_key(authority: ReportAuthority) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    quote = make_fake_quote(tls_report_data(key.public_key()))
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Teaclave")])
    cert = (
        x509.CertificateBuilder()
        .issuer_name(name)
        .subject_name(name)
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=1))
        .public_key(key.public_key())
        .add_extension(
            x509.UnrecognizedExtension(
                x509.ObjectIdentifier(RATLS_EVIDENCE_OID), encode_ratls_evidence(quote, other)
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    with pytest.raises(EvidenceBindingError) as e:
        verify_ratls_certificate(cert, FakeVerifier(), NOW)
    assert e.value.reason == "pubkey-hash-mismatch"


def test_ratls_propagates_verifier_refusal(authority: ReportAuthority) -> None:
    attested = attested_certificate(authority, NOW)

    def refuse(quote: bytes, now: dt.datetime) -> object:
        raise FakeQuoteRefused("signature invalid")

    with pytest.raises(FakeQuoteRefused):
        verify_ratls_certificate(attested.certificate_der, refuse, NOW)  # type: ignore[arg-type]


def test_ratls_rejects_tcb_status_not_allowed(authority: ReportAuthority) -> None:
    attested = attested_certificate(authority, NOW)
    with pytest.raises(EvidenceError) as e:
        verify_ratls_certificate(attested.certificate_der, FakeVerifier(status="OutOfDate"), NOW)
    assert e.value.reason == "quote-status-refused"


def test_ratls_rejects_missing_expected_nonce(authority: ReportAuthority) -> None:
    attested = attested_certificate(authority, NOW)
    with pytest.raises(EvidenceBindingError) as e:
        verify_ratls_certificate(
            attested.certificate_der, FakeVerifier(), NOW, expected_nonce=b"n" * 16
        )
    assert e.value.reason == "nonce-mismatch"


def test_simulation_mode_certificate_fails_real_verification(authority: ReportAuthority) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    quote = make_fake_quote(tls_report_data(key.public_key()))
    der = build_attested_certificate(key, quote, None, NOW)  # Teaclave sim: empty report
    with pytest.raises(CertificateFormatError) as e:
        _teaclave(der, authority)
    assert e.value.reason == "report-chain-empty"


def test_renewal_due_after_attestation_validity(authority: ReportAuthority) -> None:
    der = attested_certificate(authority, NOW).certificate_der
    assert not renewal_due(der, NOW + dt.timedelta(minutes=59))
    assert renewal_due(der, NOW + dt.timedelta(minutes=60))
    assert renewal_due(der, NOW - dt.timedelta(seconds=1))  # clock went backwards
    assert renewal_due(
        der, NOW + dt.timedelta(days=91), attestation_validity=dt.timedelta(days=999)
    )
