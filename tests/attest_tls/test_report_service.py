"""The attestation report service: report format, status mapping, HTTP API, persistence."""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import re
import threading
import urllib.parse
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from confide.attestation import (
    DCAP_TO_IAS_STATUS,
    ReportError,
    ReportServiceError,
    tls_report_data,
    verify_endorsement,
)
from confide.attestation.tls._teaclave_report import UnverifiedEndorsement
from confide.config import Limits
from confide.keys import SimSealer
from confide.services.attestation_report import (
    ReportAuthority,
    ReportService,
    make_report,
    make_report_server,
    request_report,
)

from ._fakes import NOW, FakeVerdict, FakeVerifier, make_fake_quote


def _quote() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return make_fake_quote(tls_report_data(key.public_key()))


def test_report_is_ias_v4_json_signed_with_pkcs1v15(authority: ReportAuthority) -> None:
    quote = _quote()
    report, signature = make_report(quote, FakeVerifier()(quote, NOW), authority.signing_key, NOW)
    document = json.loads(report)
    assert document["version"] == 4
    assert document["isvEnclaveQuoteStatus"] == "OK"
    assert re.fullmatch(r"[0-9a-f]{32}", document["id"])
    assert document["timestamp"] == "2026-03-01T12:00:00.000000"
    assert base64.b64decode(document["isvEnclaveQuoteBody"]) == quote[:432]
    assert report == json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
    public = authority.signing_certificate.public_key()
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size >= 3072
    public.verify(signature, report, padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.parametrize(("dcap", "ias"), sorted(DCAP_TO_IAS_STATUS.items()))
def test_status_mapped_like_teaclave_reference_server(
    authority: ReportAuthority, dcap: str, ias: str
) -> None:
    quote = _quote()
    verdict = FakeVerifier(status=dcap, advisories=("INTEL-SA-00615",))(quote, NOW)
    report, _ = make_report(quote, verdict, authority.signing_key, NOW)
    document = json.loads(report)
    assert document["isvEnclaveQuoteStatus"] == ias
    assert document["advisoryIDs"] == ["INTEL-SA-00615"]


def test_refuses_unknown_tcb_status(authority: ReportAuthority) -> None:
    quote = _quote()
    with pytest.raises(ReportError) as e:
        make_report(quote, FakeVerifier(status="Bogus")(quote, NOW), authority.signing_key, NOW)
    assert e.value.reason == "unknown-tcb-status"


def test_refuses_verdict_about_another_quote(authority: ReportAuthority) -> None:
    quote, other = _quote(), _quote()
    with pytest.raises(ReportServiceError) as e:
        make_report(quote, FakeVerifier()(other, NOW), authority.signing_key, NOW)
    assert e.value.reason == "verdict-quote-mismatch"


def test_endorsement_verifies_against_root_only(
    authority: ReportAuthority, other_authority: ReportAuthority
) -> None:
    quote = _quote()
    endorsed = authority.endorse(quote, FakeVerifier()(quote, NOW), NOW)
    unverified = UnverifiedEndorsement(endorsed.report, endorsed.signature, endorsed.certs)
    verify_endorsement(unverified, authority.root_der, NOW, Limits())
    with pytest.raises(ReportError):
        verify_endorsement(unverified, other_authority.root_der, NOW, Limits())


@pytest.fixture
def server(authority: ReportAuthority) -> Iterator[tuple[str, int, FakeVerifier]]:
    verifier = FakeVerifier()
    limits = Limits(max_report_request_bytes=64 * 1024)
    service = ReportService(authority, verifier, clock=lambda: NOW, limits=limits)
    httpd = make_report_server(service, "127.0.0.1", 0, limits=limits)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    host, port = httpd.server_address[:2]
    yield str(host), int(port), verifier
    httpd.shutdown()
    httpd.server_close()


def _post(
    host: str, port: int, path: str, body: bytes, headers: dict[str, str] | None = None
) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(host, port, timeout=5)
    connection.request("POST", path, body=body, headers=headers or {})
    return connection.getresponse()


def test_http_endpoint_answers_like_teaclave_dcap_server(
    server: tuple[str, int, FakeVerifier], authority: ReportAuthority
) -> None:
    host, port, verifier = server
    quote = _quote()
    body = json.dumps({"isvEnclaveQuote": base64.b64encode(quote).decode()}).encode()
    response = _post(
        host, port, "/sgx/dev/attestation/v4/report", body, {"Content-Type": "application/json"}
    )
    report = response.read()
    assert response.status == 200
    assert response.getheader("X-IASReport-Signature") == response.getheader(
        "X-DCAPReport-Signature"
    )
    pem = urllib.parse.unquote(response.getheader("X-DCAPReport-Signing-Certificate") or "")
    signer = x509.load_pem_x509_certificate(pem.encode())
    assert signer == authority.signing_certificate
    signature = base64.b64decode(response.getheader("X-IASReport-Signature") or "")
    public = signer.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(signature, report, padding.PKCS1v15(), hashes.SHA256())
    assert verifier.calls[-1] == (quote, NOW)


def test_http_client_round_trip(
    server: tuple[str, int, FakeVerifier], authority: ReportAuthority
) -> None:
    host, port, _ = server
    quote = _quote()
    endorsed = request_report(host, port, quote)
    unverified = UnverifiedEndorsement(endorsed.report, endorsed.signature, endorsed.certs)
    verify_endorsement(unverified, authority.root_der, NOW, Limits())


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/sgx/dev/attestation/v4/report", b"not json", 400),
        ("/sgx/dev/attestation/v4/report", b'{"isvEnclaveQuote": 5}', 400),
        ("/sgx/dev/attestation/v4/report", b'{"isvEnclaveQuote": "!!!"}', 400),
        ("/sgx/dev/attestation/v4/report", b'{"isvEnclaveQuote": "AAAA"}', 400),  # refused
        ("/other", b"{}", 404),
    ],
)
def test_http_endpoint_rejects_bad_requests(
    server: tuple[str, int, FakeVerifier], path: str, body: bytes, status: int
) -> None:
    host, port, _ = server
    assert _post(host, port, path, body).status == status


def test_http_endpoint_rejects_body_over_cap(server: tuple[str, int, FakeVerifier]) -> None:
    host, port, _ = server
    response = _post(host, port, "/sgx/dev/attestation/v4/report", b"x" * (64 * 1024 + 1))
    assert response.status == 413


def test_service_rejects_request_at_cap_plus_one(authority: ReportAuthority) -> None:
    limits = Limits(max_report_request_bytes=100)
    service = ReportService(authority, FakeVerifier(), clock=lambda: NOW, limits=limits)
    assert service.handle(b" " * 101).status == 413
    assert service.handle(b" " * 100).status == 400


def test_authority_persists_sealed_and_reloads(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sealer = SimSealer(tmp_path / "sim.key")
    state = tmp_path / "as"
    first = ReportAuthority.load_or_create(state, sealer, NOW)
    second = ReportAuthority.load_or_create(state, sealer, NOW + dt.timedelta(days=1))
    assert first.root_der == second.root_der
    assert first.signing_certificate == second.signing_certificate
    for path in state.iterdir():
        assert b"PRIVATE KEY" not in path.read_bytes()
        if path.suffix == ".sealed":
            assert path.stat().st_mode & 0o077 == 0
    # close to expiry the signing certificate is renewed under the same root
    late = first.signing_certificate.not_valid_after_utc - dt.timedelta(days=10)
    renewed = ReportAuthority.load_or_create(state, sealer, late)
    assert renewed.root_der == first.root_der
    assert renewed.signing_certificate != first.signing_certificate


def test_fake_verdict_is_what_verifier_returns() -> None:
    # guard: the fake verifier must refuse non-fake quotes, or the tests above are vacuous
    from ._fakes import FakeQuoteRefused

    with pytest.raises(FakeQuoteRefused):
        FakeVerifier()(b"\x00" * 500, NOW)
    assert isinstance(FakeVerifier()(_quote(), NOW), FakeVerdict)


def test_https_endpoint_is_trusted_through_the_as_root(authority: ReportAuthority) -> None:
    import ssl

    from cryptography.hazmat.primitives import serialization

    from confide.services.attestation_report._http import server_tls_context

    service = ReportService(authority, FakeVerifier(), clock=lambda: NOW)
    httpd = make_report_server(service, "127.0.0.1", 0, tls_context=server_tls_context(authority))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        client = ssl.create_default_context(
            cadata=authority.root_certificate.public_bytes(serialization.Encoding.PEM).decode()
        )
        client.check_hostname = False  # connecting by IP; the chain is what matters here
        endorsed = request_report(
            "127.0.0.1", int(httpd.server_address[1]), _quote(), tls_context=client
        )
        assert endorsed.certs[0] == authority.signing_chain_der[0]
    finally:
        httpd.shutdown()
        httpd.server_close()
