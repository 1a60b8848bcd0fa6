"""Auditor-signed enclave_info.toml."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from confide.attestation import (
    EnclaveInfoError,
    EnclaveInfoSignatureError,
    generate_enclave_info,
    sign_enclave_info,
    verify_enclave_info,
)


@pytest.fixture(scope="module")
def auditors() -> list[rsa.RSAPrivateKey]:
    return [rsa.generate_private_key(65537, 2048) for _ in range(3)]


@pytest.fixture(scope="module")
def teaclave_toml(vectors) -> bytes:
    return (vectors / "teaclave" / "enclave_info.toml").read_bytes()


def _pubs(keys):
    return [k.public_key() for k in keys]


def test_teaclave_enclave_info_verifies_with_enough_auditors(teaclave_toml, auditors) -> None:
    sigs = [sign_enclave_info(teaclave_toml, k) for k in auditors[:2]]
    info = verify_enclave_info(teaclave_toml, sigs, _pubs(auditors), threshold=2)
    entry = info.for_service("authentication")
    assert entry == {"mr_enclave": "mr_enclave_teaclave_authentication_service",
                     "mr_signer": "mr_signer_teaclave_authentication_service"}
    assert info.for_service("frontend") is None


def test_rejects_enclave_info_with_a_bad_signature(teaclave_toml, auditors) -> None:
    sigs = [sign_enclave_info(teaclave_toml, k) for k in auditors]
    sigs[1] = bytes([sigs[1][0] ^ 1]) + sigs[1][1:]
    with pytest.raises(EnclaveInfoSignatureError, match="#1"):
        verify_enclave_info(teaclave_toml, sigs, _pubs(auditors), threshold=1)


def test_rejects_enclave_info_modified_after_signing(teaclave_toml, auditors) -> None:
    sigs = [sign_enclave_info(teaclave_toml, k) for k in auditors]
    tampered = teaclave_toml.replace(b"mr_enclave_teaclave", b"mr_enclave_teaclavX")
    with pytest.raises(EnclaveInfoSignatureError):
        verify_enclave_info(tampered, sigs, _pubs(auditors), threshold=1)


def test_rejects_enclave_info_without_signatures(teaclave_toml, auditors) -> None:
    with pytest.raises(EnclaveInfoSignatureError, match="threshold"):
        verify_enclave_info(teaclave_toml, [], _pubs(auditors), threshold=1)


def test_rejects_enclave_info_under_threshold(teaclave_toml, auditors) -> None:
    sigs = [sign_enclave_info(teaclave_toml, auditors[0])]
    with pytest.raises(EnclaveInfoSignatureError, match="threshold is 2"):
        verify_enclave_info(teaclave_toml, sigs, _pubs(auditors), threshold=2)


def test_one_auditor_signing_twice_counts_once(teaclave_toml, auditors) -> None:
    sig = sign_enclave_info(teaclave_toml, auditors[0])
    with pytest.raises(EnclaveInfoSignatureError, match="1 distinct"):
        verify_enclave_info(teaclave_toml, [sig, sig], _pubs(auditors), threshold=2)


def test_rejects_signature_by_a_non_auditor(teaclave_toml, auditors) -> None:
    outsider = rsa.generate_private_key(65537, 2048)
    sigs = [sign_enclave_info(teaclave_toml, auditors[0]), sign_enclave_info(teaclave_toml,
                                                                             outsider)]
    with pytest.raises(EnclaveInfoSignatureError, match="no auditor key"):
        verify_enclave_info(teaclave_toml, sigs, _pubs(auditors), threshold=1)


def test_rejects_zero_threshold(teaclave_toml, auditors) -> None:
    with pytest.raises(EnclaveInfoSignatureError):
        verify_enclave_info(teaclave_toml, [], _pubs(auditors), threshold=0)


def test_generated_enclave_info_round_trips(auditors, sim_sgx, sim_tdx) -> None:
    raw = generate_enclave_info({"frontend": sim_sgx.measurements,
                                 "execution": sim_tdx.measurements,
                                 "storage": {"measurement": "ab" * 48}})
    assert raw.startswith(b"[teaclave_execution_service]\n")
    info = verify_enclave_info(raw, [sign_enclave_info(raw, auditors[2])], _pubs(auditors), 1)
    assert info.for_service("teaclave_frontend_service") == sim_sgx.measurements
    assert info.for_service("execution") == sim_tdx.measurements


def test_generate_rejects_non_hex_and_unknown_keys() -> None:
    with pytest.raises(EnclaveInfoError):
        generate_enclave_info({"frontend": {"mr_enclave": "not hex"}})
    with pytest.raises(EnclaveInfoError):
        generate_enclave_info({"frontend": {"mr_evil": "00"}})


@pytest.mark.parametrize("raw", [b"not = [toml", b"x = 1\n", b"[teaclave_a_service]\nfoo = '1'\n",
                                 b"[teaclave_a_service]\nmr_enclave = 5\n", b"\xff\xfe"])
def test_rejects_malformed_enclave_info(raw, auditors) -> None:
    with pytest.raises(EnclaveInfoError):
        verify_enclave_info(raw, [sign_enclave_info(raw, auditors[0])], _pubs(auditors), 1)
