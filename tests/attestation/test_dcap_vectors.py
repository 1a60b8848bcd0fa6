"""Real Intel SGX/TDX quotes (dcap-qvl samples) through verify_dcap_quote."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from conftest import SGX_TIME, TDX_TIME

from confide.attestation import (
    INTEL_SGX_ROOT_CA_DER,
    CertificateChainError,
    CollateralExpiredError,
    CollateralSignatureError,
    EvidenceFormatError,
    QuoteSignatureError,
    SgxQuote,
    TdxQuote,
    UntrustedRootError,
    parse_quote,
    verify_dcap_quote,
)

S = dt.timedelta(seconds=1)
SGX_END = dt.datetime.fromtimestamp(1752919278, dt.UTC)
TDX_END = dt.datetime.fromtimestamp(1752919234, dt.UTC)


def _verify(q: bytes, c: bytes, now: dt.datetime, root: bytes = INTEL_SGX_ROOT_CA_DER):
    return verify_dcap_quote(q, c, trusted_root_der=root, now=now)


def test_pinned_intel_root_is_the_vector_root(dcap) -> None:
    assert INTEL_SGX_ROOT_CA_DER == dcap["root"]


@pytest.mark.parametrize("now", [SGX_TIME, SGX_END])
def test_real_sgx_quote_verifies_at_recorded_window_edges(dcap, now) -> None:
    v = _verify(dcap["sgx_quote"], dcap["sgx_collateral"], now)
    assert v.tee == "sgx"
    assert v.tcb_status == "ConfigurationAndSWHardeningNeeded"
    assert v.advisory_ids == ("INTEL-SA-00289", "INTEL-SA-00615")
    assert v.measurements == {
        "mr_enclave": "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb",
        "mr_signer": "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6"}
    assert v.report_data == b"Hello, world!".ljust(64, b"\x00")
    assert v.debug is False


@pytest.mark.parametrize("now", [TDX_TIME, TDX_END])
def test_real_tdx_quote_verifies_at_recorded_window_edges(dcap, now) -> None:
    v = _verify(dcap["tdx_quote"], dcap["tdx_collateral"], now)
    assert (v.tee, v.tcb_status, v.advisory_ids, v.debug) == ("tdx", "UpToDate", (), False)
    assert v.measurements["mrtd"].startswith("91eb2b44d141d4ece09f0c75")
    assert v.measurements["rtmr3"] == "00" * 48
    assert v.report_data.hex().startswith("9a9d48e7f6799642")


def test_parsed_models_match_recorded_fields(dcap) -> None:
    sgx = parse_quote(dcap["sgx_quote"])
    tdx = parse_quote(dcap["tdx_quote"])
    assert isinstance(sgx, SgxQuote) and isinstance(tdx, TdxQuote)
    assert (sgx.header.version, sgx.header.qe_svn, sgx.header.pce_svn) == (3, 10, 15)
    assert sgx.body.attributes.hex() == "0500000000000000e700000000000000"
    assert len(sgx.quote_body) == 432 and sgx.quote_body[112:144] == sgx.body.mr_enclave
    assert tdx.header.tee_type == 0x81
    assert tdx.body.td_attributes.hex() == "0000001000000000"
    assert tdx.body.mr_seam.hex().startswith("5b38e33a6487958b")


@pytest.mark.parametrize(("name", "now", "err"), [
    ("sgx", SGX_TIME - S, CollateralExpiredError),  # "TCBInfo issue date is in the future"
    ("sgx", SGX_END + S, CollateralExpiredError),  # "QE Identity expired"
    ("tdx", TDX_TIME - S, CollateralExpiredError),
    ("tdx", TDX_END + S, CollateralExpiredError),  # PCK CRL past nextUpdate
    ("sgx", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), CollateralExpiredError),
])
def test_rejects_collateral_outside_its_validity_window(dcap, name, now, err) -> None:
    with pytest.raises(err):
        _verify(dcap[f"{name}_quote"], dcap[f"{name}_collateral"], now)


def _flip(data: bytes, offset: int, bit: int = 0) -> bytes:
    b = bytearray(data)
    b[offset] ^= 1 << bit
    return bytes(b)


@pytest.mark.parametrize("name", ["sgx", "tdx"])
@pytest.mark.parametrize(("what", "offset"), [
    ("header_qe_svn", 8), ("header_user_data", 30), ("body_first_byte", 48),
    ("report_data", -1), ("report_signature", 0)])
def test_rejects_quote_with_one_flipped_bit(dcap, name, what, offset) -> None:
    q = dcap[f"{name}_quote"]
    body_len = 384 if name == "sgx" else 584
    if what == "report_data":
        offset = 48 + body_len - 64 + 5
    elif what == "report_signature":
        offset = 48 + body_len + 4 + 10
    with pytest.raises(QuoteSignatureError, match="signature is invalid"):
        _verify(_flip(q, offset), dcap[f"{name}_collateral"],
                SGX_TIME if name == "sgx" else TDX_TIME)


def test_rejects_quote_with_flipped_version_as_malformed(dcap) -> None:
    with pytest.raises(EvidenceFormatError):
        _verify(_flip(dcap["sgx_quote"], 0), dcap["sgx_collateral"], SGX_TIME)


def _mutate_collateral(raw: bytes, key: str) -> bytes:
    doc = json.loads(raw)
    if key in ("tcb_info", "qe_identity"):
        doc[key] = doc[key].replace('"version":', '"version": ', 1)  # same meaning, other bytes
    else:
        b = bytearray(bytes.fromhex(doc[key]))
        b[-5] ^= 1
        doc[key] = b.hex()
    return json.dumps(doc).encode()


@pytest.mark.parametrize("name", ["sgx", "tdx"])
@pytest.mark.parametrize(("key", "err"), [
    ("tcb_info", CollateralSignatureError),
    ("qe_identity", CollateralSignatureError),
    ("tcb_info_signature", CollateralSignatureError),
    ("qe_identity_signature", CollateralSignatureError),
    ("pck_crl", CertificateChainError),
    ("root_ca_crl", CertificateChainError),
])
def test_rejects_tampered_collateral(dcap, name, key, err) -> None:
    with pytest.raises(err):
        _verify(dcap[f"{name}_quote"], _mutate_collateral(dcap[f"{name}_collateral"], key),
                SGX_TIME if name == "sgx" else TDX_TIME)


def test_rejects_quote_under_a_different_root(dcap, vectors) -> None:
    other = (vectors / "teaclave" / "dcap_root_ca_cert.der").read_bytes()
    with pytest.raises(UntrustedRootError):
        _verify(dcap["sgx_quote"], dcap["sgx_collateral"], SGX_TIME, root=other)


def test_rejects_collateral_that_is_not_json(dcap) -> None:
    with pytest.raises(EvidenceFormatError):
        _verify(dcap["sgx_quote"], b"\xff not json", SGX_TIME)


def test_requires_timezone_aware_now(dcap) -> None:
    with pytest.raises(ValueError, match="timezone"):
        _verify(dcap["sgx_quote"], dcap["sgx_collateral"], SGX_TIME.replace(tzinfo=None))
