"""Every attested-TLS cap refuses cap + 1; the public surface is pinned; the fetch layer works."""

from __future__ import annotations

import json
import socket
import ssl
import tempfile
import threading
from pathlib import Path

import cbor2
import pytest

import confide.attestation
import confide.keys
import confide.services.attestation_report
from confide.attestation import (
    CertificateFormatError,
    RaTlsError,
    fetch_unverified_certificate,
    verify_teaclave_certificate,
)
from confide.attestation.tls import parse_report, parse_teaclave_extension
from confide.attestation.tls._ratls_cert import (
    CBOR_TAG_INTEL_TEE_QUOTE,
    parse_ratls_endorsements,
    parse_ratls_evidence,
)
from confide.config import Limits
from confide.services.attestation_report import ReportAuthority

from ._fakes import ENCLAVE_INFO, NOW, attested_certificate


def _ext(report: int = 1, signature: int = 1, certs: int = 1) -> bytes:
    return json.dumps(
        {"report": [1] * report, "signature": [1] * signature, "certs": [[1]] * certs}
    ).encode()


def test_extension_size_cap() -> None:
    raw = _ext()
    parse_teaclave_extension(raw, Limits(max_attestation_extension_bytes=len(raw)))
    with pytest.raises(CertificateFormatError) as e:
        parse_teaclave_extension(raw, Limits(max_attestation_extension_bytes=len(raw) - 1))
    assert e.value.reason == "extension-too-large"


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("max_report_bytes", {"report": 11}),
        ("max_report_signature_bytes", {"signature": 11}),
        ("max_report_chain_certs", {"certs": 11}),
    ],
)
def test_extension_field_caps(field: str, kwargs: dict[str, int]) -> None:
    parse_teaclave_extension(_ext(**{k: 10 for k in kwargs}), Limits(**{field: 10}))
    with pytest.raises(CertificateFormatError) as e:
        parse_teaclave_extension(_ext(**kwargs), Limits(**{field: 10}))
    assert e.value.reason == "extension-too-large"


@pytest.mark.parametrize("item", [256, -1, True, 1.5, "1", None, [1]])
@pytest.mark.parametrize("field", ["report", "signature", "certs"])
def test_extension_byte_arrays_hold_only_bytes(field: str, item: object) -> None:
    document = {"report": [1, 2], "signature": [3], "certs": [[4]]}
    if field == "certs":
        document["certs"] = [[4, item]]
    else:
        document[field] = [1, item]
    with pytest.raises(CertificateFormatError) as e:
        parse_teaclave_extension(json.dumps(document).encode(), Limits())
    assert e.value.reason == "extension-field-invalid"


def test_report_size_cap() -> None:
    with pytest.raises(RaTlsError) as e:
        parse_report(b" " * 11, Limits(max_report_bytes=10))
    assert e.value.reason == "report-too-large"


def test_certificate_size_cap(authority: ReportAuthority) -> None:
    der = attested_certificate(authority, NOW).certificate_der

    def verify(cap: int) -> None:
        verify_teaclave_certificate(
            der,
            as_root_der=authority.root_der,
            enclave_info=ENCLAVE_INFO,
            service_table="teaclave_frontend_service",
            now=NOW,
            limits=Limits(max_certificate_bytes=cap),
        )

    verify(len(der))
    with pytest.raises(CertificateFormatError) as e:
        verify(len(der) - 1)
    assert e.value.reason == "certificate-too-large"


def test_ratls_quote_cap() -> None:
    claims = cbor2.dumps({"pubkey-hash": cbor2.dumps([1, b"\x00" * 32])})
    raw = cbor2.dumps(cbor2.CBORTag(CBOR_TAG_INTEL_TEE_QUOTE, [b"q" * 11, claims]))
    parse_ratls_evidence(raw, Limits(max_ratls_quote_bytes=11))
    with pytest.raises(CertificateFormatError) as e:
        parse_ratls_evidence(raw, Limits(max_ratls_quote_bytes=10))
    assert e.value.reason == "extension-too-large"


def test_ratls_collateral_cap() -> None:
    raw = cbor2.dumps(cbor2.CBORTag(CBOR_TAG_INTEL_TEE_QUOTE, b"c" * 20))
    parse_ratls_endorsements(raw, Limits(max_ratls_collateral_bytes=len(raw)))
    with pytest.raises(CertificateFormatError):
        parse_ratls_endorsements(raw, Limits(max_ratls_collateral_bytes=len(raw) - 1))


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xff",
        cbor2.dumps([1, 2]),
        cbor2.dumps(cbor2.CBORTag(CBOR_TAG_INTEL_TEE_QUOTE, [b"q"])),
        cbor2.dumps(cbor2.CBORTag(0x1A7504, [b"q", b"c"])),
    ],
)
def test_rejects_malformed_ratls_evidence(raw: bytes) -> None:
    with pytest.raises(CertificateFormatError):
        parse_ratls_evidence(raw, Limits())


def test_attestation_public_surface_is_pinned() -> None:
    assert set(confide.attestation.__all__) >= {
        "DCAP_TO_IAS_STATUS",
        "RATLS_ENDORSEMENT_OID",
        "RATLS_EVIDENCE_OID",
        "TEACLAVE_EXTENSION_OID",
        "AttestedCertificate",
        "CertificateFormatError",
        "EndorsedReport",
        "EvidenceBindingError",
        "EvidenceError",
        "GetQuote",
        "MeasurementMismatchError",
        "QuoteVerdict",
        "RaTlsError",
        "ReportError",
        "ReportServiceError",
        "VerifiedPeer",
        "VerifyQuote",
        "build_attested_certificate",
        "fetch_unverified_certificate",
        "issue_attested_certificate",
        "renewal_due",
        "tls_report_data",
        "verify_endorsement",
        "verify_ratls_certificate",
        "verify_teaclave_certificate",
    }
    assert len(confide.attestation.__all__) == len(set(confide.attestation.__all__))


def test_report_service_surface_is_pinned() -> None:
    assert confide.services.attestation_report.__all__ == [
        "ReportAuthority",
        "ReportService",
        "client_tls_context",
        "make_report",
        "make_report_server",
        "request_report",
        "run_attestation_service",
        "server_tls_context",
    ]


def test_keys_public_surface_is_pinned() -> None:
    assert confide.keys.__all__ == [
        "DEFAULT_INBOUND_POLICY",
        "DERIVATION_LABELS",
        "INTERNAL_RPC_POLICY",
        "KEY_KINDS",
        "NODE_ROLES",
        "ROLE_TABLES",
        "ROOT_SECRET_BYTES",
        "ROOT_SECRET_ROLES",
        "SERVICE_URI_PREFIX",
        "EnrolmentChallenge",
        "EnrolmentError",
        "EnrolmentGrant",
        "EnrolmentKeys",
        "EnrolmentRequest",
        "InboundPolicy",
        "KeyRing",
        "KeyVersion",
        "KeysError",
        "KindKeys",
        "LiveKeys",
        "PeerNotAllowedError",
        "PlatformCA",
        "RoleMeasurements",
        "RootSecret",
        "Sealer",
        "SealingError",
        "SimSealer",
        "UnsafeSimSealerWarning",
        "check_rpc",
        "enrolment_report_data",
        "grants_root_secret",
        "is_revoked_id",
        "load_root_secret",
        "make_enrolment_request",
        "open_enrolment_grant",
        "parse_kid",
        "seal_root_secret",
        "service_dns_name",
        "services_of",
        "store_root_secret",
    ]
    for name in confide.keys.__all__:
        assert hasattr(confide.keys, name)


def test_fetch_returns_the_servers_certificate_with_alpn_h2(authority: ReportAuthority) -> None:
    attested = attested_certificate(authority, NOW)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_alpn_protocols(["h2"])
    with tempfile.TemporaryDirectory() as private:
        cert_path, key_path = Path(private) / "c.pem", Path(private) / "k.pem"
        cert_path.write_bytes(attested.certificate_pem())
        key_path.write_bytes(attested.private_key_pem())
        context.load_cert_chain(cert_path, key_path)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    negotiated: list[str | None] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with context.wrap_socket(conn, server_side=True) as tls:
            negotiated.append(tls.selected_alpn_protocol())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        der = fetch_unverified_certificate("127.0.0.1", port, timeout=5)
    finally:
        thread.join(5)
        listener.close()
    assert der == attested.certificate_der
    assert negotiated == ["h2"]
