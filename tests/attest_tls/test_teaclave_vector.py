"""The real Teaclave RA-TLS certificate (vectors §E) against the client checks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from confide.attestation import (
    CertificateFormatError,
    EvidenceError,
    MeasurementMismatchError,
    ReportError,
    verify_teaclave_certificate,
)

INSIDE = dt.datetime(2022, 1, 18, tzinfo=dt.UTC)  # cert and report signer both valid
TABLE = "teaclave_frontend_service"
FIXTURE_INFO = {
    TABLE: {
        "mr_enclave": "82bc195bd181ca8e3cf220f633eea98e7a0a55f3217fa7f731cf0d7a8d83253e",
        "mr_signer": "83d719e77deaca1470f6baf62a4d774303c899db69020f9c70ee1dfc08c7ce9e",
    }
}


@pytest.fixture(scope="module")
def cert(vectors: Path) -> bytes:
    return (vectors / "teaclave" / "tls_ra_cert_v4.der").read_bytes()


@pytest.fixture(scope="module")
def root(vectors: Path) -> bytes:
    return (vectors / "teaclave" / "dcap_root_ca_cert.der").read_bytes()


def _verify(cert: bytes, root: bytes, **kwargs: object) -> object:
    args: dict[str, object] = {
        "as_root_der": root,
        "enclave_info": FIXTURE_INFO,
        "service_table": TABLE,
        "now": INSIDE,
    }
    args.update(kwargs)
    return verify_teaclave_certificate(cert, **args)  # type: ignore[arg-type]


def test_sdk_checks_accept_real_teaclave_certificate(cert: bytes, root: bytes) -> None:
    peer = _verify(cert, root, strict=False)
    assert peer.status == "OK"  # type: ignore[attr-defined]
    assert peer.mr_signer.hex().startswith("83d719e7")  # type: ignore[attr-defined]


def test_strict_checks_accept_it_only_when_debug_is_allowed(cert: bytes, root: bytes) -> None:
    with pytest.raises(EvidenceError) as e:
        _verify(cert, root)
    assert e.value.reason == "debug-enclave-refused"
    _verify(cert, root, allow_debug=True)


def test_strict_rejects_expired_teaclave_certificate(cert: bytes, root: bytes) -> None:
    with pytest.raises(CertificateFormatError) as e:
        _verify(cert, root, now=dt.datetime(2022, 6, 1, tzinfo=dt.UTC), allow_debug=True)
    assert e.value.reason == "certificate-expired"


def test_strict_rejects_stale_report(cert: bytes, root: bytes) -> None:
    with pytest.raises(EvidenceError) as e:
        _verify(cert, root, now=dt.datetime(2022, 1, 19, tzinfo=dt.UTC), allow_debug=True)
    assert e.value.reason == "report-stale"


def test_rejects_placeholder_enclave_info_measurements(
    cert: bytes, root: bytes, vectors: Path
) -> None:
    import tomllib

    info = tomllib.loads((vectors / "teaclave" / "enclave_info.toml").read_text())
    with pytest.raises(MeasurementMismatchError) as e:
        _verify(
            cert,
            root,
            enclave_info=info,
            service_table="teaclave_authentication_service",
            strict=False,
        )
    assert e.value.reason == "mr-enclave-mismatch"


def test_rejects_report_signed_under_a_different_root(cert: bytes, vectors: Path) -> None:
    ias_root = (vectors / "teaclave" / "ias_root_ca_cert.der").read_bytes()
    with pytest.raises(ReportError) as e:
        _verify(cert, ias_root, strict=False)
    assert e.value.reason == "report-signer-untrusted"


def test_rejects_after_the_as_root_expired(cert: bytes, root: bytes) -> None:
    with pytest.raises(ReportError) as e:
        _verify(cert, root, now=dt.datetime(2031, 1, 1, tzinfo=dt.UTC), strict=False)
    assert e.value.reason == "report-root-expired"


def test_rejects_flipped_report_byte_in_real_certificate(cert: bytes, root: bytes) -> None:
    # The self-signature is never checked (Teaclave's is not even valid DER), so a
    # byte of the embedded report can be changed in place: '"id"' -> '"ie"'.
    needle = b'"report":[123,34,105,100,'
    assert cert.count(needle) == 1
    tampered = cert.replace(needle, b'"report":[123,34,105,101,')
    with pytest.raises(ReportError) as e:
        _verify(tampered, root, strict=False)
    assert e.value.reason == "report-signature-invalid"


def test_rejects_flipped_signature_byte_in_real_certificate(cert: bytes, root: bytes) -> None:
    needle = b'"signature":[21,151,'
    assert cert.count(needle) == 1
    tampered = cert.replace(needle, b'"signature":[22,151,')
    with pytest.raises(ReportError) as e:
        _verify(tampered, root, strict=False)
    assert e.value.reason == "report-signature-invalid"


def test_rejects_unknown_service_table(cert: bytes, root: bytes) -> None:
    with pytest.raises(MeasurementMismatchError) as e:
        _verify(cert, root, service_table="teaclave_storage_service", strict=False)
    assert e.value.reason == "service-unknown"
