"""SEV-SNP across generations: Milan/Genoa/Turin roots and layouts, VCEK and VLEK, reports v2-v5.

Real vectors: the Milan v2 VCEK report, the Turin VCEK and chain, the Genoa
and Turin ARK/ASK, a Milan v3 VLEK report with its VLEK and ASVK chain. Turin
*reports* are not public: ``_snp_sim`` builds them with test keys, laid out as
Turin's (FMC SPL, 8-byte hwID, CPUID family 0x1A).
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import pytest
from _snp_sim import AmdTestHierarchy, make_test_amd, tcb_bytes
from conftest import SNP_TIME
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from confide.attestation import (
    AMD_ARK_GENOA_DER,
    AMD_ARK_MILAN_DER,
    AMD_ARK_TURIN_DER,
    AMD_ARKS,
    AppraisalPolicy,
    CertificateChainError,
    CollateralExpiredError,
    EnclaveInfo,
    Evidence,
    EvidenceFormatError,
    QuoteSignatureError,
    SigningKeyNotAllowedError,
    SnpTcb,
    TcbMismatchError,
    UntrustedRootError,
    parse_snp_report,
    verify_snp_chain,
    verify_snp_report,
)

VLEK_TIME = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)  # inside the VLEK's 2024-12-10..2025-12-10
TURIN_TIME = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
ALL_ARKS = list(AMD_ARKS.values())


def _pem_of_der(path: Path) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # AMD certificates with serial 0
        cert = x509.load_der_x509_certificate(path.read_bytes())
    return cert.public_bytes(serialization.Encoding.PEM)


def _flip(data: bytes, offset: int, mask: int = 1) -> bytes:
    b = bytearray(data)
    b[offset] ^= mask
    return bytes(b)


# --- pinned roots --------------------------------------------------------------------
@pytest.mark.parametrize(("product", "path"), [
    ("Milan", "ask_ark_milan.pem"), ("Genoa", "genoa/ark.pem"), ("Turin", "turin/ark.pem"),
    ("Turin", "turin/cert_chain_turin"), ("Milan", "vlek/ask_ark_milan_vlek.pem")])
def test_pinned_arks_are_amds_published_roots(vectors, product, path) -> None:
    ark = x509.load_pem_x509_certificates((vectors / "snp" / path).read_bytes())[-1]
    assert ark.public_bytes(serialization.Encoding.DER) == AMD_ARKS[product]
    assert {"Milan": AMD_ARK_MILAN_DER, "Genoa": AMD_ARK_GENOA_DER,
            "Turin": AMD_ARK_TURIN_DER}[product] == AMD_ARKS[product]


def test_pinned_roots_ship_inside_the_package() -> None:
    import confide.attestation.appraisal._roots as roots

    assert "vectors" not in Path(roots.__file__).read_text()
    with pytest.raises(TypeError):
        AMD_ARKS["Evil"] = b""  # type: ignore[index]


# --- Turin: the real VCEK and chain ----------------------------------------------------
@pytest.fixture(scope="module")
def turin_chain(vectors) -> bytes:
    d = vectors / "snp" / "turin"
    return _pem_of_der(d / "vcek_turin.der") + (d / "cert_chain_turin").read_bytes()


def test_real_turin_vcek_chain_verifies_to_the_turin_ark(turin_chain) -> None:
    chain = verify_snp_chain(turin_chain, trusted_arks_der=ALL_ARKS, now=TURIN_TIME)
    assert (chain.product, chain.kind) == ("Turin", "VCEK")
    assert chain.key.product_name == "Turin"
    assert chain.key.hwid == bytes.fromhex("1e550a8ee5cf9f4d")  # 8 bytes on Turin
    tcb = chain.key.tcb
    assert (tcb.fmc, tcb.bootloader, tcb.tee, tcb.snp, tcb.microcode) == (0, 0, 0, 0, 9)
    assert tcb.raw == bytes([0, 0, 0, 0, 0, 0, 0, 9])


def test_real_turin_chain_is_refused_without_the_turin_ark(turin_chain) -> None:
    with pytest.raises(UntrustedRootError):
        verify_snp_chain(turin_chain, trusted_arks_der=[AMD_ARK_MILAN_DER, AMD_ARK_GENOA_DER],
                         now=TURIN_TIME)


def test_real_turin_vcek_is_refused_before_its_validity(turin_chain) -> None:
    with pytest.raises(CollateralExpiredError):
        verify_snp_chain(turin_chain, trusted_arks_der=ALL_ARKS,
                         now=dt.datetime(2024, 11, 6, tzinfo=dt.UTC))


def test_real_turin_vcek_under_the_genoa_ask_is_refused(vectors) -> None:
    pem = (_pem_of_der(vectors / "snp" / "turin" / "vcek_turin.der")
           + (vectors / "snp" / "genoa" / "ask.pem").read_bytes())
    with pytest.raises(CertificateChainError):
        verify_snp_chain(pem, trusted_arks_der=ALL_ARKS, now=TURIN_TIME)


# --- Turin/Genoa/Milan reports signed by test keys laid out as each product's -------------
_HIER: dict[tuple[str, str], AmdTestHierarchy] = {}


def hier(product: str, kind: str = "VCEK") -> AmdTestHierarchy:
    if (product, kind) not in _HIER:
        _HIER[product, kind] = make_test_amd(product, kind)
    return _HIER[product, kind]


def _verify(h: AmdTestHierarchy, report: bytes, **kw) -> dict[str, str]:
    v = verify_snp_report(report, h.chain_pem(), trusted_arks_der=[h.ark_der], now=TURIN_TIME,
                          allowed_signing_keys=kw.pop("keys", ("VCEK", "VLEK")), **kw)
    return dict(v.details)


@pytest.mark.parametrize("product", ["Milan", "Genoa", "Turin"])
@pytest.mark.parametrize("version", [3, 4, 5])
def test_test_signed_report_of_each_generation_verifies(product, version) -> None:
    h = hier(product)
    details = _verify(h, h.report(version=version))
    assert (details["product"], details["report_version"]) == (product, str(version))
    assert details["reported_tcb"] == tcb_bytes(product).hex()
    assert ("launch_mit_vector" in details) == (version == 5)


def test_turin_report_tcb_is_read_with_the_turin_layout() -> None:
    r = parse_snp_report(hier("Turin").report(version=5))
    assert r.product == "Turin" and r.cpuid == (0x1A, 0x02, 0x00)
    t = r.reported_tcb
    assert (t.fmc, t.bootloader, t.tee, t.snp, t.microcode) == (1, 2, 3, 4, 0xD9)
    milan_view = SnpTcb.decode(t.raw, "Milan")  # the old, product-blind reading
    assert (milan_view.bootloader, milan_view.snp) == (1, 0)
    assert (r.launch_mit_vector, r.current_mit_vector) == (0x3, 0x7)


def test_turin_chip_id_is_the_8_byte_hwid_then_zeros() -> None:
    h = hier("Turin")
    details = _verify(h, h.report())
    assert details["chip_id"] == ("1e550a8ee5cf9f4d" + "00" * 56)


@pytest.mark.parametrize(("what", "offset", "err", "match"), [
    ("report_data", 0x50, QuoteSignatureError, "signature"),
    ("measurement", 0x90, QuoteSignatureError, "signature"),
    ("reported fmc", 0x180, TcbMismatchError, "fmc"),
    ("reported bootloader", 0x181, TcbMismatchError, "bootloader"),
    ("reported snp", 0x183, TcbMismatchError, "snp"),
    ("reported microcode", 0x187, TcbMismatchError, "microcode"),
    ("chip_id (hwID byte)", 0x1A0, TcbMismatchError, "hwID"),
    ("chip_id (byte past the hwID)", 0x1A8, TcbMismatchError, "hwID"),
    ("signature r", 0x2A0, QuoteSignatureError, "signature"),
    ("cpuid family -> Milan", 0x188, TcbMismatchError, "Milan"),
])
def test_rejects_turin_report_with_a_flipped_byte(what, offset, err, match) -> None:
    h = hier("Turin")
    report = h.report(version=5)
    if what.startswith("cpuid"):  # a Turin report claiming to be Milan's (family 0x19)
        report = _flip(report, offset, 0x1A ^ 0x19)
    else:
        report = _flip(report, offset)
    with pytest.raises(err, match=match):
        _verify(h, report)


def test_rejects_turin_report_whose_vcek_certifies_another_fmc() -> None:
    h = make_test_amd("Turin", spls={"fmc": 9, "bootloader": 2, "tee": 3, "snp": 4,
                                     "microcode": 0xD9})
    with pytest.raises(TcbMismatchError, match="fmc SVN 1 differs"):
        _verify(h, h.report(tcb=tcb_bytes("Turin")))


def test_rejects_turin_vcek_claiming_another_product() -> None:
    h = make_test_amd("Turin", product_name="Genoa-B0")
    with pytest.raises(TcbMismatchError, match="Genoa-B0"):
        _verify(h, h.report())


def test_rejects_version_2_report_under_a_turin_chain() -> None:
    h = hier("Turin")
    with pytest.raises(TcbMismatchError, match="version 2"):
        _verify(h, h.report(version=2, tcb=tcb_bytes("Milan")))


def test_rejects_masked_chip_key_with_a_vcek_signature() -> None:
    """MASK_CHIP_KEY (flag bit 1) means the platform does not use its VCEK."""
    h = hier("Genoa")
    with pytest.raises(TcbMismatchError, match="MASK_CHIP_KEY"):
        _verify(h, h.report(mask_chip_key=True))
    assert parse_snp_report(h.report(mask_chip_key=True)).mask_chip_key
    vlek = hier("Genoa", "VLEK")
    assert _verify(vlek, vlek.report(mask_chip_key=True))["signing_key"] == "VLEK"


def test_rejects_genoa_report_with_zero_chip_id() -> None:
    h = hier("Genoa")
    with pytest.raises(TcbMismatchError, match="masks the chip id"):
        _verify(h, h.report(chip_id=bytes(64)))


@pytest.mark.parametrize("cpuid", [(0x17, 0x31, 0), (0x19, 0x21, 0), (0x1A, 0x40, 0)])
def test_rejects_report_from_an_unknown_cpu(cpuid) -> None:
    with pytest.raises(EvidenceFormatError, match="no known SEV-SNP product"):
        parse_snp_report(hier("Milan").report(cpuid=cpuid))


def test_rejects_unsigned_report() -> None:
    h = hier("Milan")
    with pytest.raises(QuoteSignatureError, match="unsigned"):
        _verify(h, h.report(signing_key=7))


@pytest.mark.parametrize("version", [1, 6])
def test_rejects_report_versions_outside_2_to_5(version) -> None:
    with pytest.raises(EvidenceFormatError, match="version"):
        parse_snp_report(hier("Milan").report(version=version))


# --- VLEK -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vlek(vectors) -> tuple[bytes, bytes]:
    d = vectors / "snp" / "vlek"
    chain = _pem_of_der(d / "test-vlek.der") + (d / "ask_ark_milan_vlek.pem").read_bytes()
    return (d / "test-vlek-report.bin").read_bytes(), chain


def test_real_vlek_report_verifies_with_the_milan_asvk_chain(vlek) -> None:
    report, chain = vlek
    r = parse_snp_report(report)
    assert (r.version, r.signing_key, r.product, r.mask_chip_key) == (3, "VLEK", "Milan", False)
    v = verify_snp_report(report, chain, trusted_arks_der=ALL_ARKS, now=VLEK_TIME,
                          allowed_signing_keys=("VLEK",))
    assert v.details["signing_key"] == "VLEK"
    assert v.details["csp_id"] == "CN=cc-us-east-2.amazonaws.com"
    assert v.details["reported_tcb"] == "04000000000018d9"  # bl 4, snp 24, ucode 217
    assert v.debug is False


def test_real_vlek_report_fails_with_a_vcek_only_policy(vlek) -> None:
    report, chain = vlek
    with pytest.raises(SigningKeyNotAllowedError, match="VLEK"):
        verify_snp_report(report, chain, trusted_arks_der=ALL_ARKS, now=VLEK_TIME)
    info = EnclaveInfo({"teaclave_execution_service": {
        "measurement": parse_snp_report(report).measurement.hex()}})
    ev = Evidence(tee="snp", quote=report, collateral=chain)
    rd = parse_snp_report(report).report_data
    vcek_only = AppraisalPolicy(ALL_ARKS, info, max_evidence_age=None,
                                allowed_tcb_statuses=frozenset({"NotEvaluated"}))
    with pytest.raises(SigningKeyNotAllowedError):
        vcek_only.appraise(ev, expected_report_data=rd, service="execution", now=VLEK_TIME)
    with_vlek = AppraisalPolicy(ALL_ARKS, info, max_evidence_age=None,
                                allowed_tcb_statuses=frozenset({"NotEvaluated"}),
                                snp_signing_keys=frozenset({"VLEK"}))
    res = with_vlek.appraise(ev, expected_report_data=rd, service="execution", now=VLEK_TIME)
    assert res.tee == "snp"


def test_real_vlek_report_fails_when_milan_is_not_trusted(vlek) -> None:
    report, chain = vlek
    with pytest.raises(UntrustedRootError):
        verify_snp_report(report, chain, trusted_arks_der=[AMD_ARK_GENOA_DER, AMD_ARK_TURIN_DER],
                          now=VLEK_TIME, allowed_signing_keys=("VLEK",))


@pytest.mark.parametrize("now", [dt.datetime(2024, 12, 1, tzinfo=dt.UTC),
                                 dt.datetime(2025, 12, 11, tzinfo=dt.UTC)])
def test_real_vlek_report_fails_outside_the_vleks_validity(vlek, now) -> None:
    report, chain = vlek
    with pytest.raises(CollateralExpiredError):
        verify_snp_report(report, chain, trusted_arks_der=ALL_ARKS, now=now,
                          allowed_signing_keys=("VLEK",))


def test_real_vlek_report_fails_with_flipped_report_data(vlek) -> None:
    report, chain = vlek
    with pytest.raises(QuoteSignatureError):
        verify_snp_report(_flip(report, 0x50), chain, trusted_arks_der=ALL_ARKS, now=VLEK_TIME,
                          allowed_signing_keys=("VLEK",))


def test_real_vlek_report_relabelled_as_vcek_signed_is_refused(vlek) -> None:
    report, chain = vlek
    with pytest.raises(CertificateChainError, match="chain certifies a VLEK"):
        verify_snp_report(_flip(report, 0x48, 0b100), chain, trusted_arks_der=ALL_ARKS,
                          now=VLEK_TIME, allowed_signing_keys=("VCEK", "VLEK"))


def test_real_vlek_under_the_vcek_ask_is_refused(vlek, snp) -> None:
    report, chain = vlek
    vlek_pem = chain.split(b"-----END CERTIFICATE-----")[0] + b"-----END CERTIFICATE-----\n"
    with pytest.raises(CertificateChainError):
        verify_snp_report(report, vlek_pem + snp["ask_ark"], trusted_arks_der=ALL_ARKS,
                          now=VLEK_TIME, allowed_signing_keys=("VLEK",))


@pytest.mark.parametrize("product", ["Milan", "Turin"])
def test_test_signed_vlek_report_verifies_without_a_chip_id(product) -> None:
    h = hier(product, "VLEK")
    details = _verify(h, h.report(version=5))
    assert (details["signing_key"], details["csp_id"]) == ("VLEK", "CN=test-csp.example")
    with pytest.raises(SigningKeyNotAllowedError):
        _verify(h, h.report(version=5), keys=("VCEK",))


def test_real_milan_v2_vcek_report_still_verifies_with_all_arks_pinned(snp) -> None:
    v = verify_snp_report(snp["report"], snp["chain"], trusted_arks_der=ALL_ARKS, now=SNP_TIME)
    assert (v.details["product"], v.details["signing_key"]) == ("Milan", "VCEK")
