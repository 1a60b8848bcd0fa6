"""TDX quote v5 (TD report 1.0 and 1.5): the real dcap-qvl sample and sim v5 quotes."""

from __future__ import annotations

import datetime as dt

import dcap_qvl
import pytest
from conftest import TDX_V5_TIME, rd

from confide.attestation import (
    INTEL_SGX_ROOT_CA_DER,
    AppraisalPolicy,
    EnclaveInfo,
    Evidence,
    EvidenceFormatError,
    MeasurementNotAcceptedError,
    QuoteSignatureError,
    TcbLevelNotFoundError,
    TdReport,
    TdReport15,
    TdxQuote,
    UnsafeTrustSimRoot,
    parse_quote,
    verify_dcap_quote,
)
from confide.attestation.sim import SimAttester

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
RD = rd(b"tdx v5")
V5_BODY = 48 + 6  # header + body descriptor


def _flip(data: bytes, offset: int) -> bytes:
    b = bytearray(data)
    b[offset] ^= 1
    return bytes(b)


def test_real_v5_quote_parses_as_td_report_15(dcap) -> None:
    q = parse_quote(dcap["tdx_v5_quote"])
    assert isinstance(q, TdxQuote) and isinstance(q.body, TdReport15)
    assert (q.header.version, q.header.tee_type, q.body.version) == (5, 0x81, "1.5")
    assert q.body.tee_tcb_svn.hex() == "07010300000000000000000000000000"
    assert q.body.tee_tcb_svn2.hex() == "0d010300000000000000000000000000"
    assert q.body.mr_servicetd == bytes(48)
    assert q.body.td_attributes.hex() == "0000001000000000"
    # our parse agrees with dcap-qvl's own parser field by field
    theirs = dcap_qvl.parse_quote(dcap["tdx_v5_quote"]).report
    assert bytes(theirs.mr_td) == q.body.mr_td
    assert bytes(theirs.report_data) == q.body.report_data
    assert bytes(theirs.tee_tcb_svn2) == q.body.tee_tcb_svn2
    assert bytes(theirs.mr_service_td) == q.body.mr_servicetd
    assert [bytes(theirs.rt_mr0), bytes(theirs.rt_mr3)] == [q.body.rtmrs[0], q.body.rtmrs[3]]


@pytest.mark.parametrize("now", [TDX_V5_TIME, dt.datetime(2026, 3, 1, tzinfo=dt.UTC)])
def test_real_v5_quote_gets_dcap_qvls_verdict_as_its_specific_error(dcap, now) -> None:
    """The sample is from a real outdated platform: its TCB is below every listed level."""
    with pytest.raises(TcbLevelNotFoundError, match="No matching TCB level found"):
        verify_dcap_quote(dcap["tdx_v5_quote"], dcap["tdx_v5_collateral"],
                          trusted_root_der=INTEL_SGX_ROOT_CA_DER, now=now)


@pytest.mark.parametrize(("what", "offset"), [
    ("report_data", V5_BODY + 520 + 3), ("mr_servicetd", V5_BODY + 600 + 3),
    ("tee_tcb_svn2", V5_BODY + 584 + 1), ("body descriptor size", 48 + 2)])
def test_rejects_real_v5_quote_with_a_flipped_signed_byte(dcap, what, offset) -> None:
    with pytest.raises((QuoteSignatureError, EvidenceFormatError)):
        verify_dcap_quote(_flip(dcap["tdx_v5_quote"], offset), dcap["tdx_v5_collateral"],
                          trusted_root_der=INTEL_SGX_ROOT_CA_DER, now=TDX_V5_TIME)


@pytest.mark.parametrize(("body_type", "size", "match"), [
    (1, 384, "body type 1 unsupported"), (4, 648, "body type 4 unsupported"),
    (3, 584, "must be 648 bytes"), (2, 648, "must be 584 bytes")])
def test_rejects_v5_quote_with_wrong_body_descriptor(dcap, body_type, size, match) -> None:
    q = bytearray(dcap["tdx_v5_quote"])
    q[48:54] = body_type.to_bytes(2, "little") + size.to_bytes(4, "little")
    with pytest.raises(EvidenceFormatError, match=match):
        parse_quote(bytes(q))


def test_rejects_sgx_quote_relabelled_as_version_5(dcap) -> None:
    q = bytearray(dcap["sgx_quote"])
    q[0] = 5
    with pytest.raises(EvidenceFormatError, match="unsupported"):
        parse_quote(bytes(q))


@pytest.mark.parametrize(("version", "td_report", "model"), [
    (4, "1.0", TdReport), (5, "1.0", TdReport), (5, "1.5", TdReport15)])
def test_sim_tdx_quote_formats_verify_through_dcap_qvl(sim_dir, version, td_report,
                                                       model) -> None:
    att = SimAttester(sim_dir, "tdx", quote_version=version, td_report=td_report)
    ev = att.evidence(RD, now=NOW)
    q = parse_quote(ev.quote)
    assert type(q.body) is model and q.header.version == version
    policy = AppraisalPolicy([UnsafeTrustSimRoot(att.root_certificate_der)],
                             EnclaveInfo({"teaclave_frontend_service": att.measurements}))
    res = policy.appraise(ev, expected_report_data=RD, service="frontend", now=NOW)
    assert (res.tee, res.tcb_status, res.sim) == ("tdx", "UpToDate", True)
    assert dict(res.measurements) == att.measurements
    assert ("mr_servicetd" in res.measurements) == (td_report == "1.5")


def test_v5_verified_result_carries_the_td_report_15_fields(sim_tdx_v5) -> None:
    ev = sim_tdx_v5.evidence(RD, now=NOW)
    v = verify_dcap_quote(ev.quote, ev.collateral, now=NOW,
                          trusted_root_der=sim_tdx_v5.root_certificate_der)
    assert v.details["quote_version"] == "5" and v.details["td_report"] == "1.5"
    assert v.details["tee_tcb_svn2"] == v.details["tee_tcb_svn"]
    assert set(v.measurements) == {"mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3", "mr_config_id",
                                   "mr_owner", "mr_owner_config", "mr_seam", "mr_servicetd"}


def test_rejects_sim_v5_quote_with_a_flipped_mr_servicetd(sim_tdx_v5) -> None:
    ev = sim_tdx_v5.evidence(RD, now=NOW)
    with pytest.raises(QuoteSignatureError, match="signature is invalid"):
        verify_dcap_quote(_flip(ev.quote, V5_BODY + 600), ev.collateral, now=NOW,
                          trusted_root_der=sim_tdx_v5.root_certificate_der)


def _policy(att: SimAttester, **entry: str) -> AppraisalPolicy:
    info = EnclaveInfo({"teaclave_frontend_service": {**att.measurements, **entry}})
    return AppraisalPolicy([UnsafeTrustSimRoot(att.root_certificate_der)], info)


@pytest.mark.parametrize("key", ["mr_servicetd", "rtmr3", "mr_config_id", "mr_owner",
                                 "mr_owner_config", "mr_seam"])
def test_policy_refuses_v5_quote_whose_listed_td_measurement_differs(sim_tdx_v5, key) -> None:
    ev = sim_tdx_v5.evidence(RD, now=NOW)
    with pytest.raises(MeasurementNotAcceptedError, match=key):
        _policy(sim_tdx_v5, **{key: "ab" * 48}).appraise(
            ev, expected_report_data=RD, service="frontend", now=NOW)


def test_policy_refuses_td_report_10_when_mr_servicetd_is_listed(sim_dir, sim_tdx_v5) -> None:
    """A TD report 1.0 carries no MRSERVICETD: an entry that pins one cannot be met."""
    v4 = SimAttester(sim_dir, "tdx", quote_version=4)
    ev = v4.evidence(RD, now=NOW)
    policy = _policy(v4, mr_servicetd="00" * 48)
    with pytest.raises(MeasurementNotAcceptedError, match="does not carry"):
        policy.appraise(ev, expected_report_data=RD, service="frontend", now=NOW)


def test_policy_refuses_tdx_v5_evidence_declared_as_sgx(sim_tdx_v5) -> None:
    from confide.attestation import TeeTypeMismatchError

    ev = sim_tdx_v5.evidence(RD, now=NOW)
    with pytest.raises(TeeTypeMismatchError):
        _policy(sim_tdx_v5).appraise(
            Evidence(tee="sgx", quote=ev.quote, collateral=ev.collateral, produced_at=NOW),
            expected_report_data=RD, service="frontend", now=NOW)


@pytest.mark.parametrize(("version", "td_report"), [(3, "1.0"), (4, "1.5"), (6, "1.5")])
def test_sim_refuses_quote_formats_that_do_not_exist(sim_dir, version, td_report) -> None:
    with pytest.raises(ValueError, match="formats"):
        SimAttester(sim_dir, "tdx", quote_version=version, td_report=td_report)
