"""One test per attestation cap in confide.config.Limits (cap passes, cap + 1 fails)."""

from __future__ import annotations

import json

import pytest
from conftest import SGX_TIME

from confide.attestation import (
    INTEL_SGX_ROOT_CA_DER,
    EnclaveInfoError,
    EnclaveInfoSignatureError,
    EvidenceTooLargeError,
    parse_quote,
    verify_dcap_quote,
    verify_enclave_info,
    verify_snp_report,
)
from confide.config import Limits


def test_quote_size_cap(dcap) -> None:
    q = dcap["sgx_quote"]
    parse_quote(q, Limits(max_quote_bytes=len(q)))
    with pytest.raises(EvidenceTooLargeError, match="max_quote_bytes"):
        parse_quote(q, Limits(max_quote_bytes=len(q) - 1))


def test_collateral_size_cap(dcap) -> None:
    c = dcap["sgx_collateral"]
    verify_dcap_quote(dcap["sgx_quote"], c, trusted_root_der=INTEL_SGX_ROOT_CA_DER, now=SGX_TIME,
                      limits=Limits(max_collateral_bytes=len(c)))
    with pytest.raises(EvidenceTooLargeError, match="max_collateral_bytes"):
        verify_dcap_quote(dcap["sgx_quote"], c, trusted_root_der=INTEL_SGX_ROOT_CA_DER,
                          now=SGX_TIME, limits=Limits(max_collateral_bytes=len(c) - 1))


def test_snp_chain_size_cap(snp) -> None:
    from conftest import SNP_TIME

    from confide.attestation import AMD_ARK_MILAN_DER
    c = snp["chain"]
    verify_snp_report(snp["report"], c, trusted_arks_der=[AMD_ARK_MILAN_DER], now=SNP_TIME,
                      limits=Limits(max_collateral_bytes=len(c)))
    with pytest.raises(EvidenceTooLargeError):
        verify_snp_report(snp["report"], c, trusted_arks_der=[AMD_ARK_MILAN_DER], now=SNP_TIME,
                          limits=Limits(max_collateral_bytes=len(c) - 1))


def test_chain_depth_cap_on_embedded_pck_chain(dcap) -> None:
    # the embedded chain has 3 certificates: PCK, PCK CA, root
    verify_dcap_quote(dcap["sgx_quote"], dcap["sgx_collateral"],
                      trusted_root_der=INTEL_SGX_ROOT_CA_DER, now=SGX_TIME,
                      limits=Limits(max_cert_chain_depth=3))
    with pytest.raises(EvidenceTooLargeError, match="more than 2 certificates"):
        verify_dcap_quote(dcap["sgx_quote"], dcap["sgx_collateral"],
                          trusted_root_der=INTEL_SGX_ROOT_CA_DER, now=SGX_TIME,
                          limits=Limits(max_cert_chain_depth=2))


def test_chain_depth_cap_on_collateral_chains(dcap) -> None:
    doc = json.loads(dcap["sgx_collateral"])
    doc["tcb_info_issuer_chain"] *= 3  # 6 certificates
    with pytest.raises(EvidenceTooLargeError, match="tcb_info_issuer_chain"):
        verify_dcap_quote(dcap["sgx_quote"], json.dumps(doc).encode(),
                          trusted_root_der=INTEL_SGX_ROOT_CA_DER, now=SGX_TIME)


def test_chain_depth_cap_on_snp_chain(snp) -> None:
    from conftest import SNP_TIME

    from confide.attestation import AMD_ARK_MILAN_DER
    with pytest.raises(EvidenceTooLargeError, match="more than 2"):
        verify_snp_report(snp["report"], snp["chain"], trusted_arks_der=[AMD_ARK_MILAN_DER],
                          now=SNP_TIME, limits=Limits(max_cert_chain_depth=2))


def test_enclave_info_size_cap(vectors) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from confide.attestation import sign_enclave_info
    raw = (vectors / "teaclave" / "enclave_info.toml").read_bytes()
    key = rsa.generate_private_key(65537, 2048)
    sig = [sign_enclave_info(raw, key)]
    verify_enclave_info(raw, sig, [key.public_key()], 1, Limits(max_enclave_info_bytes=len(raw)))
    with pytest.raises(EnclaveInfoError, match="max_enclave_info_bytes"):
        verify_enclave_info(raw, sig, [key.public_key()], 1,
                            Limits(max_enclave_info_bytes=len(raw) - 1))


def test_enclave_info_signature_count_cap(vectors) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from confide.attestation import sign_enclave_info
    raw = (vectors / "teaclave" / "enclave_info.toml").read_bytes()
    key = rsa.generate_private_key(65537, 2048)
    sigs = [sign_enclave_info(raw, key)] * 3
    verify_enclave_info(raw, sigs, [key.public_key()], 1, Limits(max_enclave_info_signatures=3))
    with pytest.raises(EnclaveInfoSignatureError, match="max_enclave_info_signatures"):
        verify_enclave_info(raw, sigs, [key.public_key()], 1,
                            Limits(max_enclave_info_signatures=2))
