"""The real verifiers behind the attested-TLS seam (sim SGX quotes through dcap-qvl),
and the trust-file bundle a client loads."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from confide.attestation import (
    AppraisalPolicy,
    CertificateFormatError,
    EnclaveInfo,
    EnclaveInfoError,
    EvidenceBindingError,
    MeasurementNotAcceptedError,
    ReportDataMismatchError,
    TrustBundle,
    UnsafeTrustSimRoot,
    UntrustedRootError,
    build_attested_certificate,
    certificate_collateral,
    dcap_quote_verifier,
    issue_attested_certificate,
    policy_quote_verifier,
    tls_report_data,
    verify_ratls_with_policy,
)
from confide.attestation.sim import SimAttester
from confide.config import Limits
from confide.services.attestation_report import ReportAuthority

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
TABLE = "teaclave_frontend_service"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> SimAttester:
    return SimAttester(tmp_path_factory.mktemp("sim"), "sgx")


@pytest.fixture(scope="module")
def other_sim(tmp_path_factory: pytest.TempPathFactory) -> SimAttester:
    return SimAttester(tmp_path_factory.mktemp("other-sim"), "sgx")


def _policy(sim: SimAttester, measurements: dict[str, str] | None = None) -> AppraisalPolicy:
    return AppraisalPolicy([UnsafeTrustSimRoot(sim.root_certificate_der)],
                           EnclaveInfo({TABLE: measurements or sim.measurements}))


def _certificate(sim: SimAttester, *, collateral: bool = True) -> bytes:
    authority = ReportAuthority.create(NOW - dt.timedelta(minutes=1))
    verify = dcap_quote_verifier(UnsafeTrustSimRoot(sim.root_certificate_der),
                                 lambda _q, now: sim.collateral(now))
    attested = issue_attested_certificate(
        lambda rd: sim.evidence(rd, now=NOW).quote,
        lambda q: authority.endorse(q, verify(q, NOW), NOW), NOW,
        get_collateral=(lambda _q: sim.collateral(NOW)) if collateral else None)
    return attested.certificate_der


def test_dcap_quote_verifier_reports_the_sim_quote_status_and_measurements(
        sim: SimAttester) -> None:
    rd = b"\x07" * 64
    verify = dcap_quote_verifier(UnsafeTrustSimRoot(sim.root_certificate_der),
                                 lambda _q, now: sim.collateral(now))
    verdict = verify(sim.evidence(rd, now=NOW).quote, NOW)
    assert verdict.status == "UpToDate"
    assert verdict.report_data == rd
    assert verdict.mr_enclave.hex() == sim.measurements["mr_enclave"]


def test_dcap_quote_verifier_rejects_a_quote_under_another_root(
        sim: SimAttester, other_sim: SimAttester) -> None:
    verify = dcap_quote_verifier(UnsafeTrustSimRoot(sim.root_certificate_der),
                                 lambda _q, now: other_sim.collateral(now))
    with pytest.raises(UntrustedRootError):
        verify(other_sim.evidence(b"\x00" * 64, now=NOW).quote, NOW)


def test_policy_quote_verifier_rejects_unlisted_measurement(sim: SimAttester) -> None:
    rd = b"\x01" * 64
    listed = {**sim.measurements, "mr_enclave": "00" * 32}
    verify = policy_quote_verifier(_policy(sim, listed), service=TABLE,
                                   collateral=sim.collateral(NOW), expected_report_data=rd,
                                   produced_at=NOW)
    with pytest.raises(MeasurementNotAcceptedError):
        verify(sim.evidence(rd, now=NOW).quote, NOW)


def test_ratls_with_policy_accepts_the_platform_certificate(sim: SimAttester) -> None:
    der = _certificate(sim)
    peer = verify_ratls_with_policy(der, _policy(sim), service=TABLE, now=NOW)
    assert peer.status == "UpToDate"
    assert peer.mr_enclave.hex() == sim.measurements["mr_enclave"]


def test_rejects_ratls_certificate_without_collateral(sim: SimAttester) -> None:
    der = _certificate(sim, collateral=False)
    assert certificate_collateral(der) is None
    with pytest.raises(CertificateFormatError) as e:
        verify_ratls_with_policy(der, _policy(sim), service=TABLE, now=NOW)
    assert e.value.reason == "ratls-collateral-missing"


def test_rejects_ratls_certificate_for_unlisted_measurement(sim: SimAttester) -> None:
    der = _certificate(sim)
    listed = {**sim.measurements, "mr_enclave": "11" * 32}
    with pytest.raises(MeasurementNotAcceptedError):
        verify_ratls_with_policy(der, _policy(sim, listed), service=TABLE, now=NOW)


def test_rejects_ratls_certificate_whose_quote_binds_another_key(sim: SimAttester) -> None:
    """A genuine quote for key A presented in a certificate of key B."""
    key_a = ec.generate_private_key(ec.SECP256R1())
    key_b = ec.generate_private_key(ec.SECP256R1())
    quote = sim.evidence(tls_report_data(key_a.public_key()), now=NOW).quote
    with pytest.raises(EvidenceBindingError, match="report-data-mismatch"):
        build_attested_certificate(key_b, quote, None, NOW)
    # the appraisal itself binds REPORTDATA to the presenting certificate's key
    der = build_attested_certificate(key_a, quote, None, NOW, collateral=sim.collateral(NOW))
    policy = _policy(sim)
    verify = policy_quote_verifier(policy, service=TABLE, collateral=sim.collateral(NOW),
                                   expected_report_data=tls_report_data(key_b.public_key()),
                                   produced_at=NOW)
    with pytest.raises(ReportDataMismatchError):
        verify(quote, NOW)
    assert verify_ratls_with_policy(der, policy, service=TABLE, now=NOW).status == "UpToDate"


def _write_bundle(d: Path, sim: SimAttester, *, info: bytes = b'[teaclave_frontend_service]\n',
                  auditors: int = 1) -> None:
    (d / "enclave_info.toml").write_bytes(info)
    for i in range(auditors):
        a = d / "auditors" / f"a{i}"
        a.mkdir(parents=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024 + 1024)
        (a / f"a{i}.public.pem").write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        (a / f"a{i}.sign.sha256").write_bytes(b"\x00" * 256)
    authority = ReportAuthority.create(NOW)
    (d / "as-root-ca.pem").write_bytes(authority.root_certificate.public_bytes(
        serialization.Encoding.PEM))
    (d / "sim-dcap-root.der").write_bytes(sim.root_certificate_der)


def test_trust_bundle_loads_the_data_dir_layout(tmp_path: Path, sim: SimAttester) -> None:
    _write_bundle(tmp_path, sim, auditors=2)
    bundle = TrustBundle.load(tmp_path)
    assert len(bundle.auditor_keys) == len(bundle.signatures) == 2
    assert bundle.sim_dcap_root_der == sim.root_certificate_der


def test_trust_bundle_refuses_enclave_info_over_the_cap(tmp_path: Path, sim: SimAttester) -> None:
    limits = Limits(max_enclave_info_bytes=64)
    _write_bundle(tmp_path, sim, info=b"#" * 64)
    TrustBundle.load(tmp_path, limits)  # at the cap
    (tmp_path / "enclave_info.toml").write_bytes(b"#" * 65)
    with pytest.raises(EnclaveInfoError, match="larger than 64"):
        TrustBundle.load(tmp_path, limits)


def test_trust_bundle_refuses_more_auditors_than_the_cap(tmp_path: Path, sim: SimAttester) -> None:
    _write_bundle(tmp_path, sim, auditors=3)
    TrustBundle.load(tmp_path, Limits(max_enclave_info_signatures=3))
    with pytest.raises(EnclaveInfoError, match="more than 2 auditors"):
        TrustBundle.load(tmp_path, Limits(max_enclave_info_signatures=2))


def test_trust_bundle_refuses_a_missing_as_root(tmp_path: Path, sim: SimAttester) -> None:
    _write_bundle(tmp_path, sim)
    (tmp_path / "as-root-ca.pem").unlink()
    with pytest.raises(EnclaveInfoError, match="AS root"):
        TrustBundle.load(tmp_path)
