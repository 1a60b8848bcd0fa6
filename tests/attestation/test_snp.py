"""AMD SEV-SNP report verification (go-sev-guest sample)."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import SNP_TIME

from confide.attestation import (
    AMD_ARK_MILAN_DER,
    AppraisalPolicy,
    CertificateChainError,
    CollateralExpiredError,
    DebugNotAllowedError,
    EnclaveInfo,
    Evidence,
    EvidenceFormatError,
    QuoteSignatureError,
    TcbMismatchError,
    TcbStatusNotAllowedError,
    UntrustedRootError,
    parse_snp_report,
    verify_snp_report,
)

MEAS = ("b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b"
        "6bdf8a9ece31a5a608eb0cf2e4872b01")


def _v(report: bytes, chain: bytes, now: dt.datetime = SNP_TIME, arks=None):
    return verify_snp_report(report, chain, trusted_arks_der=arks or [AMD_ARK_MILAN_DER], now=now)


def _flip(data: bytes, offset: int) -> bytes:
    b = bytearray(data)
    b[offset] ^= 1
    return bytes(b)


def test_real_snp_report_verifies(snp) -> None:
    v = _v(snp["report"], snp["chain"])
    assert v.measurements == {"measurement": MEAS}
    assert v.report_data == bytes([1, 2, 3, 4, 5]) + bytes(59)
    assert v.debug is True  # policy 0xB0000 allows debugging
    assert v.tcb_status == "NotEvaluated"
    assert v.details["chip_id"].startswith("3ac3fe21e13fb099")


def test_parsed_snp_fields_match_recorded_values(snp) -> None:
    r = parse_snp_report(snp["report"])
    assert (r.version, r.vmpl, r.policy) == (2, 0, 0xB0000)
    assert (r.reported_tcb.bootloader, r.reported_tcb.tee, r.reported_tcb.snp,
            r.reported_tcb.microcode) == (2, 0, 5, 68)


def test_chain_without_shipped_ark_uses_the_pinned_one(snp) -> None:
    ask_only = snp["ask_ark"].split(b"-----END CERTIFICATE-----")[0] + \
        b"-----END CERTIFICATE-----\n"
    assert _v(snp["report"], snp["vcek_pem"] + ask_only).measurements["measurement"] == MEAS


@pytest.mark.parametrize(("offset", "what"), [(0x50, "report_data"), (0x90, "measurement"),
                                              (0x08, "policy"), (0x2A0, "signature r")])
def test_rejects_snp_report_with_flipped_bit(snp, offset, what) -> None:
    with pytest.raises((QuoteSignatureError, TcbMismatchError)):
        _v(_flip(snp["report"], offset), snp["chain"])


def test_rejects_snp_chip_id_mismatch(snp) -> None:
    with pytest.raises(TcbMismatchError, match="chip_id"):
        _v(_flip(snp["report"], 0x1A0 + 3), snp["chain"])


def test_rejects_snp_reported_tcb_mismatch(snp) -> None:
    with pytest.raises(TcbMismatchError, match="snp SVN"):
        _v(_flip(snp["report"], 0x180 + 6), snp["chain"])


def test_rejects_snp_chain_with_swapped_order(snp) -> None:
    # ASK presented as the VCEK: its signature is by the ARK, not "the ASK"
    with pytest.raises((CertificateChainError, UntrustedRootError)):
        _v(snp["report"], snp["ask_ark"] + snp["vcek_pem"])


def test_rejects_snp_chain_with_tampered_vcek(snp) -> None:
    import warnings

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        der = bytearray(x509.load_pem_x509_certificate(snp["vcek_pem"]).public_bytes(
            serialization.Encoding.DER))
    der[-10] ^= 1  # inside the signature
    import base64
    pem = (b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(bytes(der))
           + b"-----END CERTIFICATE-----\n")
    with pytest.raises(CertificateChainError):
        _v(snp["report"], pem + snp["ask_ark"])


def test_rejects_snp_chain_to_unpinned_ark(snp, vectors) -> None:
    other = (vectors / "teaclave" / "dcap_root_ca_cert.der").read_bytes()
    with pytest.raises(UntrustedRootError):
        _v(snp["report"], snp["chain"], arks=[other])


def test_rejects_snp_when_vcek_expired(snp) -> None:
    with pytest.raises(CollateralExpiredError):
        _v(snp["report"], snp["chain"], now=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))


def test_rejects_truncated_snp_report(snp) -> None:
    with pytest.raises(EvidenceFormatError):
        _v(snp["report"][:-1], snp["chain"])


def _snp_policy(**kw) -> AppraisalPolicy:
    return AppraisalPolicy([AMD_ARK_MILAN_DER],
                           EnclaveInfo({"teaclave_execution_service": {"measurement": MEAS}}),
                           max_evidence_age=None, **kw)


def test_snp_policy_rejects_debug_guest(snp) -> None:
    ev = Evidence(tee="snp", quote=snp["report"], collateral=snp["chain"])
    rd = bytes([1, 2, 3, 4, 5]) + bytes(59)
    with pytest.raises(DebugNotAllowedError):
        _snp_policy(allowed_tcb_statuses=frozenset({"NotEvaluated"})).appraise(
            ev, expected_report_data=rd, service="execution", now=SNP_TIME)
    with pytest.raises(TcbStatusNotAllowedError, match="NotEvaluated"):
        _snp_policy(allow_debug=True).appraise(
            ev, expected_report_data=rd, service="execution", now=SNP_TIME)
    res = _snp_policy(allow_debug=True, allowed_tcb_statuses=frozenset({"NotEvaluated"})
                      ).appraise(ev, expected_report_data=rd, service="execution", now=SNP_TIME)
    assert res.tee == "snp" and res.debug is True
