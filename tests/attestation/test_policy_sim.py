"""sim SGX/TDX evidence through AppraisalPolicy (the same dcap-qvl path as hardware)."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import dcap_qvl
import pytest
from conftest import SGX_TIME, TDX_TIME, rd

from confide.attestation import (
    INTEL_SGX_ROOT_CA_DER,
    SIM_WARNING,
    AppraisalPolicy,
    DebugNotAllowedError,
    EmptyPolicyError,
    EnclaveInfo,
    Evidence,
    EvidenceFormatError,
    EvidenceTooOldError,
    MeasurementNotAcceptedError,
    ReportDataMismatchError,
    TcbStatusNotAllowedError,
    TeeTypeMismatchError,
    UnsafeTrustSimRoot,
    UntrustedRootError,
    package_measurement,
)
from confide.attestation.sim import SimAttester

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
RD = rd(b"tls-key-hash")


def _policy(att: SimAttester, **kw) -> AppraisalPolicy:
    info = EnclaveInfo({"teaclave_frontend_service": att.measurements})
    return AppraisalPolicy([UnsafeTrustSimRoot(att.root_certificate_der)], info, **kw)


@pytest.fixture(params=["sgx", "tdx"])
def att(request, sim_sgx, sim_tdx) -> SimAttester:
    return sim_sgx if request.param == "sgx" else sim_tdx


def test_sim_quote_verifies_up_to_date_through_dcap_qvl(att) -> None:
    ev = att.evidence(RD, now=NOW)
    res = _policy(att).appraise(ev, expected_report_data=RD, service="frontend", now=NOW)
    assert (res.tee, res.tcb_status, res.sim, res.debug) == (att.tee, "UpToDate", True, False)
    assert res.service == "teaclave_frontend_service"
    assert dict(res.measurements) == att.measurements
    # and dcap-qvl itself, called directly with the sim root, agrees
    report = dcap_qvl.verify_with_root_ca(
        ev.quote, dcap_qvl.QuoteCollateralV3.from_json(ev.collateral.decode()),
        att.root_certificate_der, int(NOW.timestamp()))
    assert report.status == "UpToDate"


def test_sim_measurement_is_the_package_hash(sim_sgx, sim_tdx) -> None:
    assert sim_sgx.measurements["mr_enclave"] == package_measurement("sha256").hex()
    assert sim_tdx.measurements["mrtd"] == package_measurement("sha384").hex()


def test_measurement_changes_when_code_changes(tmp_path: Path) -> None:
    pkg = tmp_path / "confide"
    (pkg / "__pycache__").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"junk")
    before = package_measurement("sha256", pkg)
    (pkg / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"other junk")
    assert package_measurement("sha256", pkg) == before  # caches are not code
    (pkg / "a.py").write_text("x = 2\n")
    assert package_measurement("sha256", pkg) != before


def test_sim_hierarchy_is_persisted_and_reused(sim_dir, sim_sgx) -> None:
    again = SimAttester(sim_dir, tee="sgx")
    assert again.root_certificate_der == sim_sgx.root_certificate_der
    assert again.measurements == sim_sgx.measurements
    for key in sim_dir.glob("*.key.pem"):
        assert key.stat().st_mode & 0o077 == 0


def test_every_sim_use_logs_a_loud_warning(att, caplog) -> None:
    pol = _policy(att)
    with caplog.at_level(logging.WARNING):
        caplog.clear()
        ev = att.evidence(RD, now=NOW)
        pol.appraise(ev, expected_report_data=RD, service="frontend", now=NOW)
    sim_msgs = [r for r in caplog.records if SIM_WARNING in r.getMessage()]
    assert any("UnsafeTrustSimRoot" in r.getMessage() for r in sim_msgs)
    assert any("sim evidence produced" in r.getMessage() for r in sim_msgs)


def test_rejects_sim_evidence_under_intel_root_only(att) -> None:
    pol = AppraisalPolicy([INTEL_SGX_ROOT_CA_DER],
                          EnclaveInfo({"teaclave_frontend_service": att.measurements}))
    with pytest.raises(UntrustedRootError):
        pol.appraise(att.evidence(RD, now=NOW), expected_report_data=RD, service="frontend",
                     now=NOW)


def test_rejects_sim_evidence_from_another_sim_hierarchy(att, tmp_path) -> None:
    other = SimAttester(tmp_path, tee=att.tee)
    with pytest.raises(UntrustedRootError):
        _policy(att).appraise(other.evidence(RD, now=NOW), expected_report_data=RD,
                              service="frontend", now=NOW)


def test_empty_policy_fails_closed(att) -> None:
    ev = att.evidence(RD, now=NOW)
    info = EnclaveInfo({"teaclave_frontend_service": att.measurements})
    for pol in (AppraisalPolicy([], info),
                AppraisalPolicy([UnsafeTrustSimRoot(att.root_certificate_der)], EnclaveInfo())):
        with pytest.raises(EmptyPolicyError):
            pol.appraise(ev, expected_report_data=RD, service="frontend", now=NOW)


def test_rejects_debug_enclave(att) -> None:
    ev = att.evidence(RD, now=NOW, debug=True)
    with pytest.raises(DebugNotAllowedError):
        _policy(att).appraise(ev, expected_report_data=RD, service="frontend", now=NOW)


def test_rejects_report_data_not_binding_the_expected_key(att) -> None:
    ev = att.evidence(RD, now=NOW)
    with pytest.raises(ReportDataMismatchError):
        _policy(att).appraise(ev, expected_report_data=rd(b"other key"), service="frontend",
                              now=NOW)


def test_rejects_measurement_not_in_enclave_info(att) -> None:
    ev = att.evidence(RD, now=NOW)
    wrong = {k: "00" * (len(v) // 2) for k, v in att.measurements.items()}
    pol = AppraisalPolicy([UnsafeTrustSimRoot(att.root_certificate_der)],
                          EnclaveInfo({"teaclave_frontend_service": wrong}))
    with pytest.raises(MeasurementNotAcceptedError, match="is not the one listed"):
        pol.appraise(ev, expected_report_data=RD, service="frontend", now=NOW)


def test_rejects_service_missing_from_enclave_info(att) -> None:
    ev = att.evidence(RD, now=NOW)
    with pytest.raises(MeasurementNotAcceptedError, match="no \\[teaclave_storage_service\\]"):
        _policy(att).appraise(ev, expected_report_data=RD, service="storage", now=NOW)


def test_rejects_tdx_rtmr_differing_from_enclave_info(sim_tdx) -> None:
    m = dict(sim_tdx.measurements, rtmr2="11" * 48)
    pol = AppraisalPolicy([UnsafeTrustSimRoot(sim_tdx.root_certificate_der)],
                          EnclaveInfo({"teaclave_frontend_service": m}))
    with pytest.raises(MeasurementNotAcceptedError, match="rtmr2"):
        pol.appraise(sim_tdx.evidence(RD, now=NOW), expected_report_data=RD,
                     service="frontend", now=NOW)


def test_rejects_tcb_status_not_allowed(att) -> None:
    ev = att.evidence(RD, now=NOW)
    with pytest.raises(TcbStatusNotAllowedError, match="UpToDate"):
        _policy(att, allowed_tcb_statuses=frozenset({"SWHardeningNeeded"})).appraise(
            ev, expected_report_data=RD, service="frontend", now=NOW)


def test_rejects_evidence_too_old(att) -> None:
    ev = att.evidence(RD, now=NOW - dt.timedelta(hours=2))
    # collateral issued 2 h ago is still valid; only the evidence age is wrong
    with pytest.raises(EvidenceTooOldError):
        _policy(att).appraise(ev, expected_report_data=RD, service="frontend", now=NOW)


def test_rejects_evidence_without_production_time_when_age_is_capped(att) -> None:
    ev = att.evidence(RD, now=NOW)
    bare = Evidence(tee=ev.tee, quote=ev.quote, collateral=ev.collateral)
    with pytest.raises(EvidenceTooOldError):
        _policy(att).appraise(bare, expected_report_data=RD, service="frontend", now=NOW)
    res = _policy(att, max_evidence_age=None).appraise(
        bare, expected_report_data=RD, service="frontend", now=NOW)
    assert res.tcb_status == "UpToDate"


def test_rejects_evidence_with_mislabelled_tee_type(att) -> None:
    ev = att.evidence(RD, now=NOW)
    other = "tdx" if att.tee == "sgx" else "sgx"
    with pytest.raises(TeeTypeMismatchError):
        _policy(att).appraise(Evidence(tee=other, quote=ev.quote, collateral=ev.collateral,
                                       produced_at=NOW),
                              expected_report_data=RD, service="frontend", now=NOW)


def test_rejects_evidence_without_collateral(att) -> None:
    ev = att.evidence(RD, now=NOW)
    with pytest.raises(EvidenceFormatError, match="no collateral"):
        _policy(att).appraise(Evidence(tee=ev.tee, quote=ev.quote, produced_at=NOW),
                              expected_report_data=RD, service="frontend", now=NOW)


def test_rejects_sim_collateral_past_next_update(att) -> None:
    from confide.attestation import CollateralExpiredError
    ev = att.evidence(RD, now=NOW)
    later = NOW + dt.timedelta(days=31)
    with pytest.raises(CollateralExpiredError):
        _policy(att, max_evidence_age=None).appraise(
            ev, expected_report_data=RD, service="frontend", now=later)


def test_real_sgx_vector_is_refused_by_default_status_policy(dcap) -> None:
    from confide.attestation import Evidence as Ev
    ev = Ev(tee="sgx", quote=dcap["sgx_quote"], collateral=dcap["sgx_collateral"])
    m = {"mr_enclave": "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb",
         "mr_signer": "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6"}
    info = EnclaveInfo({"teaclave_frontend_service": m})
    exp = b"Hello, world!".ljust(64, b"\x00")
    with pytest.raises(TcbStatusNotAllowedError, match="ConfigurationAndSWHardeningNeeded"):
        AppraisalPolicy([INTEL_SGX_ROOT_CA_DER], info, max_evidence_age=None).appraise(
            ev, expected_report_data=exp, service="frontend", now=SGX_TIME)
    res = AppraisalPolicy(
        [INTEL_SGX_ROOT_CA_DER], info, max_evidence_age=None,
        allowed_tcb_statuses=frozenset({"ConfigurationAndSWHardeningNeeded"}),
    ).appraise(ev, expected_report_data=exp, service="frontend", now=SGX_TIME)
    assert res.sim is False and res.advisory_ids == ("INTEL-SA-00289", "INTEL-SA-00615")


def test_real_tdx_vector_passes_a_hardware_policy(dcap) -> None:
    from confide.attestation import Evidence as Ev
    from confide.attestation import verify_dcap_quote
    v = verify_dcap_quote(dcap["tdx_quote"], dcap["tdx_collateral"],
                          trusted_root_der=INTEL_SGX_ROOT_CA_DER, now=TDX_TIME)
    info = EnclaveInfo({"teaclave_execution_service": {"mrtd": v.measurements["mrtd"]}})
    ev = Ev(tee="tdx", quote=dcap["tdx_quote"], collateral=dcap["tdx_collateral"],
            produced_at=TDX_TIME)
    res = AppraisalPolicy([INTEL_SGX_ROOT_CA_DER], info).appraise(
        ev, expected_report_data=v.report_data, service="execution", now=TDX_TIME)
    assert (res.tcb_status, res.sim) == ("UpToDate", False)


def test_dcap_qvl_refuses_debug_quotes_even_when_policy_allows_them(att) -> None:
    # dcap-qvl 0.7.0 rejects DEBUG quotes itself ("Debug mode is enabled"):
    # allow_debug=True cannot admit SGX/TDX debug evidence (docs/attestation.md).
    ev = att.evidence(RD, now=NOW, debug=True)
    with pytest.raises(DebugNotAllowedError, match="dcap-qvl refuses"):
        _policy(att, allow_debug=True).appraise(ev, expected_report_data=RD, service="frontend",
                                                now=NOW)
