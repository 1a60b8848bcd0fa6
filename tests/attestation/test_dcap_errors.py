"""Every dcap-qvl failure class we can provoke comes back as its own error.

Real vectors are mutated where a byte flip reaches the check (QE report,
attestation-key binding, FMSPC); where the check needs collateral that still
carries a valid signature (QE identity, TDX module, TCB levels, CRLs), the sim
hierarchy re-signs the mutated collateral, so only the mutated rule fails.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import TDX_TIME, TDX_V5_TIME, rd
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from confide.attestation import (
    INTEL_SGX_ROOT_CA_DER,
    AttestationKeyBindingError,
    CertificateRevokedError,
    CollateralMismatchError,
    EvidenceFormatError,
    EvidenceVerificationError,
    QeIdentityMismatchError,
    QeReportSignatureError,
    QuoteSignatureError,
    TcbLevelNotFoundError,
    TcbRevokedError,
    TdxModuleMismatchError,
    verify_dcap_quote,
)
from confide.attestation.appraisal._dcap_errors import map_dcap_error
from confide.attestation.sim import SimAttester
from confide.attestation.sim._pki import SimPki, raw_ecdsa_sign

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
Doc = dict[str, Any]


def _flip(data: bytes, offset: int) -> bytes:
    b = bytearray(data)
    b[offset] ^= 1
    return bytes(b)


def _sig_data(quote: bytes) -> int:
    """Offset of the signature data (after its 4-byte size)."""
    return 48 + (6 + 648 if quote[0] == 5 else 584) + 4


# signature data of a TDX quote: 64 signature, 64 attestation key, 2 + 4 certification
# data header, then QE report (384), QE report signature (64), auth data size (2), auth data
QE_REPORT, QE_REPORT_SIG, ATT_KEY = 128 + 6, 128 + 6 + 384, 64


@pytest.mark.parametrize("which", ["tdx", "tdx_v5"])
@pytest.mark.parametrize(("what", "delta", "err"), [
    ("qe report body", QE_REPORT + 10, QeReportSignatureError),
    ("qe report signature", QE_REPORT_SIG + 5, QeReportSignatureError),
    ("attestation key", ATT_KEY + 5, AttestationKeyBindingError),
    ("qe auth data", QE_REPORT_SIG + 64 + 2 + 3, AttestationKeyBindingError),
])
def test_rejects_real_quote_with_broken_qe_evidence(dcap, which, what, delta, err) -> None:
    quote = dcap[f"{which}_quote"]
    now = TDX_TIME if which == "tdx" else TDX_V5_TIME
    with pytest.raises(err):
        verify_dcap_quote(_flip(quote, _sig_data(quote) + delta), dcap[f"{which}_collateral"],
                          trusted_root_der=INTEL_SGX_ROOT_CA_DER, now=now)


def test_qe_errors_are_quote_signature_errors() -> None:
    assert issubclass(QeReportSignatureError, QuoteSignatureError)
    assert issubclass(AttestationKeyBindingError, QuoteSignatureError)


def test_rejects_real_quote_with_collateral_of_another_platform(dcap) -> None:
    with pytest.raises(CollateralMismatchError, match="Fmspc mismatch"):
        verify_dcap_quote(dcap["tdx_quote"], dcap["tdx_v5_collateral"],
                          trusted_root_der=INTEL_SGX_ROOT_CA_DER, now=TDX_V5_TIME)


def test_real_outdated_platform_has_no_matching_tcb_level(dcap) -> None:
    with pytest.raises(TcbLevelNotFoundError):
        verify_dcap_quote(dcap["tdx_v5_quote"], dcap["tdx_v5_collateral"],
                          trusted_root_der=INTEL_SGX_ROOT_CA_DER, now=TDX_V5_TIME)


# --- sim collateral, mutated and re-signed by the sim TCB signing key -----------------
@pytest.fixture(scope="module", params=["sgx", "tdx-v4", "tdx-v5"])
def sim(request, sim_dir: Path) -> SimAttester:
    tee, _, version = request.param.partition("-v")
    return SimAttester(sim_dir, tee, quote_version=int(version) if version else None)


def _resign(att: SimAttester, pki: SimPki, key: str, mutate: Callable[[Doc], None]) -> bytes:
    doc = json.loads(att.collateral(NOW))
    inner = json.loads(doc[key])
    mutate(inner)
    raw = json.dumps(inner, separators=(",", ":"))
    doc[key] = raw
    doc[f"{key}_signature"] = raw_ecdsa_sign(pki.keys["tcb_signing"], raw.encode()).hex()
    return json.dumps(doc).encode()


def _set(path: str, value: object) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        node[int(last) if last.isdigit() else last] = value
    return mutate


def _verify(att: SimAttester, collateral: bytes) -> None:
    verify_dcap_quote(att.evidence(rd(b"e"), now=NOW).quote, collateral, now=NOW,
                      trusted_root_der=att.root_certificate_der)


QE_CASES = [
    ("mrsigner", _set("mrsigner", "00" * 32), QeIdentityMismatchError, "MRSIGNER"),
    ("isvprodid", _set("isvprodid", 7), QeIdentityMismatchError, "ISVPRODID"),
    ("miscselect", _set("miscselect", "00000001"), QeIdentityMismatchError, "MISCSELECT"),
    ("attributes", _set("attributes", "00" * 16), QeIdentityMismatchError, "ATTRIBUTES"),
    ("qe svn below every level", _set("tcbLevels.0.tcb.isvsvn", 99), QeIdentityMismatchError,
     "ISVSVN"),
    ("qe level revoked", _set("tcbLevels.0.tcbStatus", "Revoked"), TcbRevokedError, "Revoked"),
]


@pytest.mark.parametrize(("what", "mutate", "err", "match"), QE_CASES)
def test_rejects_quote_from_a_qe_its_identity_does_not_describe(
        sim, sim_dir, what, mutate, err, match) -> None:
    with pytest.raises(err, match=match):
        _verify(sim, _resign(sim, SimPki.load_or_create(sim_dir), "qe_identity", mutate))


def test_rejects_qe_identity_of_the_other_tee_type(sim, sim_dir) -> None:
    other = "TD_QE" if sim.tee == "sgx" else "QE"
    with pytest.raises(CollateralMismatchError, match="QE Identity id"):
        _verify(sim, _resign(sim, SimPki.load_or_create(sim_dir), "qe_identity",
                             _set("id", other)))


TCB_CASES = [
    ("cpusvn below every level", _set("tcbLevels.0.tcb.sgxtcbcomponents.0.svn", 99),
     TcbLevelNotFoundError),
    ("pcesvn below every level", _set("tcbLevels.0.tcb.pcesvn", 99), TcbLevelNotFoundError),
    ("level revoked", _set("tcbLevels.0.tcbStatus", "Revoked"), TcbRevokedError),
    ("fmspc of another platform", _set("fmspc", "112233445566"), CollateralMismatchError),
    ("unknown status", _set("tcbLevels.0.tcbStatus", "Bogus"), EvidenceFormatError),
]


@pytest.mark.parametrize(("what", "mutate", "err"), TCB_CASES)
def test_rejects_quote_whose_tcb_info_rules_it_out(sim, sim_dir, what, mutate, err) -> None:
    with pytest.raises(err):
        _verify(sim, _resign(sim, SimPki.load_or_create(sim_dir), "tcb_info", mutate))


def test_rejects_tcb_info_of_the_other_tee_type(sim, sim_dir) -> None:
    with pytest.raises(CollateralMismatchError, match="TCB info"):
        _verify(sim, _resign(sim, SimPki.load_or_create(sim_dir), "tcb_info",
                             _set("id", "TDX" if sim.tee == "sgx" else "SGX")))


def _drop(key: str) -> Callable[[Doc], None]:
    return lambda doc: doc.pop(key)


@pytest.mark.parametrize(("what", "mutate"), [
    ("module signer", _set("tdxModuleIdentities.0.mrsigner", "11" * 48)),
    ("module svn below every level", _set("tdxModuleIdentities.0.tcbLevels.0.tcb.isvsvn", 99)),
    ("no tdxModule", _drop("tdxModule")),
    ("no identity for this module", _set("tdxModuleIdentities", [])),
])
@pytest.mark.parametrize("version", [4, 5])
def test_rejects_td_on_a_tdx_module_the_tcb_info_does_not_list(sim_dir, version, what,
                                                               mutate) -> None:
    td = SimAttester(sim_dir, "tdx", quote_version=version)
    with pytest.raises(TdxModuleMismatchError):
        _verify(td, _resign(td, SimPki.load_or_create(sim_dir), "tcb_info", mutate))


def test_rejects_quote_whose_pck_certificate_is_revoked(sim, sim_dir) -> None:
    pki = SimPki.load_or_create(sim_dir)
    crl = (x509.CertificateRevocationListBuilder()
           .issuer_name(pki.certs["pck_ca"].subject)
           .last_update(NOW - dt.timedelta(hours=1)).next_update(NOW + dt.timedelta(days=1))
           .add_revoked_certificate(x509.RevokedCertificateBuilder()
                                    .serial_number(pki.certs["pck"].serial_number)
                                    .revocation_date(NOW - dt.timedelta(hours=1)).build())
           .add_extension(x509.CRLNumber(2), critical=False)
           .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
               pki.keys["pck_ca"].public_key()), critical=False)
           .sign(pki.keys["pck_ca"], hashes.SHA256()))
    doc = json.loads(sim.collateral(NOW))
    doc["pck_crl"] = crl.public_bytes(serialization.Encoding.DER).hex()
    with pytest.raises(CertificateRevokedError):
        _verify(sim, json.dumps(doc).encode())


def test_unrecognised_dcap_qvl_text_still_fails_generically() -> None:
    err = map_dcap_error(ValueError("Verification failed: something new"))
    assert type(err) is EvidenceVerificationError
    assert "something new" in str(err)
