"""A TDX node (sim quote v5, TD report 1.5) attested end to end by the SDK's path.

Teaclave's attestation report covers SGX quote bodies only, so a TDX node's
certificate carries the RA-TLS evidence (and collateral) with an empty
Teaclave report; the SDK's ``attest_endpoint`` appraises it through RA-TLS
alone, against the auditor-listed ``mrtd``/RTMRs/MRSERVICETD.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from confide.attestation import (
    AppraisalPolicy,
    EnclaveInfo,
    EvidenceBindingError,
    MeasurementNotAcceptedError,
    ReportServiceError,
    UnsafeTrustSimRoot,
    build_attested_certificate,
    dcap_quote_verifier,
    issue_attested_certificate,
    tls_report_data,
    unverified_certificate_tee,
    verify_ratls_with_policy,
)
from confide.attestation.sim import SimAttester
from confide.attestation.tls import AttestedCertificate
from confide.client._attested import ServerAttestationError, TrustInputs, attest_endpoint
from confide.config import Limits
from confide.services.attestation_report import ReportAuthority

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
TABLE = "teaclave_frontend_service"


@pytest.fixture(scope="module")
def tdx(tmp_path_factory: pytest.TempPathFactory) -> SimAttester:
    return SimAttester(tmp_path_factory.mktemp("sim-tdx"), "tdx", quote_version=5)


@pytest.fixture(scope="module")
def attested(tdx: SimAttester) -> AttestedCertificate:
    return issue_attested_certificate(lambda rd: tdx.evidence(rd, now=NOW).quote, None, NOW,
                                      get_collateral=lambda _q: tdx.collateral(NOW))


def _info(entry: dict[str, str]) -> EnclaveInfo:
    return EnclaveInfo({TABLE: entry, "teaclave_authentication_service": entry})


def test_tdx_v5_certificate_is_recognised_as_tdx(attested: AttestedCertificate) -> None:
    assert unverified_certificate_tee(attested.certificate_der) == "tdx"


def test_ratls_appraisal_accepts_the_tdx_v5_certificate(tdx: SimAttester,
                                                        attested: AttestedCertificate) -> None:
    policy = AppraisalPolicy([UnsafeTrustSimRoot(tdx.root_certificate_der)],
                             _info(tdx.measurements))
    peer = verify_ratls_with_policy(attested.certificate_der, policy, service=TABLE, now=NOW)
    assert peer.status == "UpToDate"


def test_sgx_only_enclave_info_refuses_the_tdx_node(tdx: SimAttester,
                                                    attested: AttestedCertificate) -> None:
    policy = AppraisalPolicy([UnsafeTrustSimRoot(tdx.root_certificate_der)],
                             _info({"mr_enclave": "00" * 32, "mr_signer": "00" * 32}))
    with pytest.raises(MeasurementNotAcceptedError, match="lists no mrtd"):
        verify_ratls_with_policy(attested.certificate_der, policy, service=TABLE, now=NOW)


def test_report_service_and_builder_refuse_teaclave_reports_for_tdx(
        tdx: SimAttester, attested: AttestedCertificate, tmp_path: Path) -> None:
    """Teaclave's report format has an SGX quote body: no report is made for a TDX quote,
    and a report of some SGX quote cannot be attached to a TDX node's certificate."""
    authority = ReportAuthority.create(NOW - dt.timedelta(minutes=1))
    verify = dcap_quote_verifier(UnsafeTrustSimRoot(tdx.root_certificate_der),
                                 lambda _q, now: tdx.collateral(now))
    quote = tdx.evidence(b"\x01" * 64, now=NOW).quote
    with pytest.raises(ReportServiceError, match="quote-not-sgx"):
        authority.endorse(quote, verify(quote, NOW), NOW)
    sgx = SimAttester(tmp_path, "sgx")
    sgx_quote = sgx.evidence(b"\x02" * 64, now=NOW).quote
    endorsement = authority.endorse(sgx_quote, dcap_quote_verifier(
        UnsafeTrustSimRoot(sgx.root_certificate_der), lambda _q, now: sgx.collateral(now))(
            sgx_quote, NOW), NOW)
    tdx_quote = tdx.evidence(tls_report_data(attested.private_key.public_key()), now=NOW).quote
    with pytest.raises(EvidenceBindingError, match="SGX quotes only"):
        build_attested_certificate(attested.private_key, tdx_quote, endorsement, NOW)



@pytest.fixture(scope="module")
def tls_port(attested: AttestedCertificate, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[int]:
    """A TLS endpoint presenting the TDX node's certificate (handshakes only)."""
    d: Path = tmp_path_factory.mktemp("tdx-node")
    (d / "cert.pem").write_bytes(attested.certificate_pem())
    (d / "key.pem").write_bytes(attested.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(d / "cert.pem", d / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join(5)
    listener.close()


def _trust(tdx: SimAttester, entry: dict[str, str], *, roots: bool = True) -> TrustInputs:
    return TrustInputs(as_root_der=b"unused for a TDX node", enclave_info=_info(entry),
                       ratls_roots=(UnsafeTrustSimRoot(tdx.root_certificate_der),)
                       if roots else None, limits=Limits())


def test_sdk_attests_the_tdx_v5_node_end_to_end(tdx: SimAttester, tls_port: int,
                                                attested: AttestedCertificate) -> None:
    endpoint = attest_endpoint("127.0.0.1", tls_port, TABLE, _trust(tdx, tdx.measurements),
                               now=NOW)
    assert endpoint.ratls_checked
    assert endpoint.peer.certificate_der == attested.certificate_der
    assert endpoint.peer.status == "UpToDate"


def test_sdk_refuses_tdx_node_whose_mr_servicetd_is_not_listed(tdx: SimAttester,
                                                               tls_port: int) -> None:
    entry = {**tdx.measurements, "mr_servicetd": "ab" * 48}
    with pytest.raises(ServerAttestationError) as e:
        attest_endpoint("127.0.0.1", tls_port, TABLE, _trust(tdx, entry), now=NOW)
    assert e.value.reason == "measurement-not-accepted"


def test_sdk_refuses_tdx_node_without_ratls_trust_roots(tdx: SimAttester, tls_port: int) -> None:
    with pytest.raises(ServerAttestationError) as e:
        attest_endpoint("127.0.0.1", tls_port, TABLE, _trust(tdx, tdx.measurements, roots=False),
                        now=NOW)
    assert e.value.reason == "ratls-trust-required"
