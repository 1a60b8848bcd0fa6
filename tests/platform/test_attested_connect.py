"""The SDK and CLI attest the live server before sending anything, then pin."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from typer.testing import CliRunner

from confide.attestation import fetch_unverified_certificate
from confide.cli import app
from confide.client import Client, ClientError, ServerAttestationError

from ._server import ADMIN_PASSWORD, Server

TRUST_FILES = ("enclave_info.toml", "as-root-ca.pem", "sim-dcap-root.der")


def _copy_trust(server: Server, dest: Path) -> Path:
    shutil.copytree(server.data_dir / "auditors", dest / "auditors")
    for name in TRUST_FILES:
        shutil.copy(server.data_dir / name, dest / name)
    return dest


def _connect(server: Server, trust_dir: Path, **kw) -> Client:  # type: ignore[no-untyped-def]
    return Client.connect_data_dir(trust_dir, "127.0.0.1",
                                   authentication_port=server.ports["authentication"],
                                   frontend_port=server.ports["frontend"], **kw)


def test_sdk_attests_both_endpoints_then_pins_the_verified_certificates(server: Server) -> None:
    with _connect(server, server.data_dir) as client:
        auth, front = client.attested
        assert (auth.service_table, front.service_table) == (
            "teaclave_authentication_service", "teaclave_frontend_service")
        assert auth.ratls_checked and front.ratls_checked
        assert auth.peer.status == "OK"
        served = fetch_unverified_certificate("127.0.0.1", server.ports["frontend"])
        assert front.peer.certificate_sha256 == hashlib.sha256(served).digest()
        assert client.login("admin", ADMIN_PASSWORD)


def test_sdk_connect_attested_with_explicit_inputs(server: Server) -> None:
    d = server.data_dir
    from confide.attestation import UnsafeTrustSimRoot

    with Client.connect_attested(
            "127.0.0.1", as_root=d / "as-root-ca.pem", enclave_info=d / "enclave_info.toml",
            enclave_info_signatures=sorted((d / "auditors").glob("*/*.sign.sha256")),
            auditor_keys=sorted((d / "auditors").glob("*/*.public.pem")),
            trust=[UnsafeTrustSimRoot((d / "sim-dcap-root.der").read_bytes())],
            authentication_port=server.ports["authentication"],
            frontend_port=server.ports["frontend"]) as client:
        client.login("admin", ADMIN_PASSWORD)


def test_rejects_enclave_info_with_a_bad_signature(server: Server, tmp_path: Path) -> None:
    trust = _copy_trust(server, tmp_path)
    sig = next((trust / "auditors").glob("*/*.sign.sha256"))
    raw = bytearray(sig.read_bytes())
    raw[10] ^= 1
    sig.write_bytes(bytes(raw))
    with pytest.raises(ServerAttestationError) as e:
        _connect(server, trust)
    assert e.value.reason == "enclave-info-signature"


def test_rejects_enclave_info_edited_after_signing(server: Server, tmp_path: Path) -> None:
    trust = _copy_trust(server, tmp_path)
    info = trust / "enclave_info.toml"
    info.write_bytes(info.read_bytes() + b"\n")
    with pytest.raises(ServerAttestationError) as e:
        _connect(server, trust)
    assert e.value.reason == "enclave-info-signature"


def test_rejects_enclave_info_signed_by_an_unknown_auditor(server: Server, tmp_path: Path) -> None:
    from confide.attestation import sign_enclave_info

    trust = _copy_trust(server, tmp_path)
    rogue = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sig = next((trust / "auditors").glob("*/*.sign.sha256"))
    sig.write_bytes(sign_enclave_info((trust / "enclave_info.toml").read_bytes(), rogue))
    with pytest.raises(ServerAttestationError) as e:
        _connect(server, trust)
    assert e.value.reason == "enclave-info-signature"


def test_rejects_enclave_info_without_enough_auditors(server: Server) -> None:
    with pytest.raises(ServerAttestationError) as e:
        _connect(server, server.data_dir, threshold=2)
    assert e.value.reason == "enclave-info-signature"


def test_rejects_ratls_evidence_under_an_untrusted_dcap_root(server: Server) -> None:
    from confide.attestation import INTEL_SGX_ROOT_CA_DER

    with pytest.raises(ServerAttestationError) as e:
        _connect(server, server.data_dir, trust=[INTEL_SGX_ROOT_CA_DER])
    assert e.value.reason == "untrusted-root"


def test_trust_files_hold_no_secret_and_private_state_is_private(server: Server) -> None:
    d = server.data_dir
    for name in (*TRUST_FILES, "api-cert.pem"):
        data = (d / name).read_bytes()
        assert b"PRIVATE KEY" not in data
    for p in (d / "auditors").rglob("*"):
        if p.is_file():
            assert b"PRIVATE KEY" not in p.read_bytes()
    private = d / "sim-auditor.private.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    for p in (d / "attestation-service").iterdir():
        if p.name.endswith(".sealed"):
            assert b"PRIVATE KEY" not in p.read_bytes()
            assert stat.S_IMODE(p.stat().st_mode) == 0o600
    # the published API certificate is the one being served
    served = fetch_unverified_certificate("127.0.0.1", server.ports["frontend"])
    pem = x509.load_der_x509_certificate(served).public_bytes(serialization.Encoding.PEM)
    assert (d / "api-cert.pem").read_bytes() == pem


def test_cli_attest_prints_evidence_and_verdict(server: Server) -> None:
    result = CliRunner().invoke(app, ["attest", f"127.0.0.1:{server.ports['frontend']}",
                                      "--data-dir", str(server.data_dir)],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in ("sgx (quote v3)", "MRENCLAVE", "UpToDate", "binds TLS key", "TRUSTED"):
        assert text in result.output


def test_cli_attest_refuses_with_foreign_trust_files(server: Server, tmp_path: Path) -> None:
    trust = _copy_trust(server, tmp_path)
    info = trust / "enclave_info.toml"
    info.write_bytes(info.read_bytes().replace(b'mr_enclave = "', b'mr_enclave = "0', 1))
    result = CliRunner().invoke(app, ["attest", f"127.0.0.1:{server.ports['frontend']}",
                                      "--data-dir", str(trust)], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "REFUSED" in result.output


def test_cli_enclave_info_generate_sign_verify(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "a.private.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (tmp_path / "a.public.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    runner = CliRunner()
    info, sig = tmp_path / "enclave_info.toml", tmp_path / "a.sign.sha256"
    r = runner.invoke(app, ["enclave-info", "generate", "-o", str(info),
                            "--mr-enclave", "ab" * 32, "--mr-signer", "cd" * 32])
    assert r.exit_code == 0, r.output
    assert info.read_text().count("[teaclave_") == 7
    r = runner.invoke(app, ["enclave-info", "sign", "-k", str(tmp_path / "a.private.pem"),
                            "-i", str(info), "-o", str(sig)])
    assert r.exit_code == 0, r.output
    verify = ["enclave-info", "verify", "-i", str(info), "-p", str(tmp_path / "a.public.pem"),
              "-s", str(sig)]
    r = runner.invoke(app, verify)
    assert r.exit_code == 0 and "verified" in r.output, r.output
    info.write_text(info.read_text().replace("ab", "ac", 1))
    r = runner.invoke(app, verify)
    assert r.exit_code == 1 and "NOT verified" in r.output


def test_cli_login_attests_by_default(server: Server, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFIDE_HOME", str(tmp_path / "home"))
    base = ["user", "login", "admin", "--password", ADMIN_PASSWORD, "--host", "127.0.0.1",
            "--authentication-port", str(server.ports["authentication"]),
            "--frontend-port", str(server.ports["frontend"])]
    r = CliRunner().invoke(app, [*base, "--data-dir", str(server.data_dir)])
    assert r.exit_code == 0 and "attested server" in r.output, r.output
    r = CliRunner().invoke(app, ["task", "list"])
    assert r.exit_code == 0, r.output
    bad = _copy_trust(server, tmp_path / "bad")
    (bad / "as-root-ca.pem").write_bytes((server.data_dir / "api-cert.pem").read_bytes())
    r = CliRunner().invoke(app, [*base, "--data-dir", str(bad)])
    assert r.exit_code == 3 and "ATTESTATION_FAILED" in r.output  # 3: attestation (docs/cli.md)
    r = CliRunner().invoke(app, [*base, "--server-cert", str(server.data_dir / "api-cert.pem")])
    assert r.exit_code == 0 and "pinned certificate" in r.output, r.output


def test_platform_reattests_and_swaps_the_served_certificate(tmp_path: Path) -> None:
    """Renewal through grpcio's dynamic credentials: new handshakes get the new certificate."""
    from confide.node import Platform, ServerConfig

    platform = Platform(ServerConfig(data_dir=tmp_path / "data", authentication_port=0,
                                     frontend_port=0, scheduler_port=0, key_service_port=0,
                                     blob_port=None, workers=0,
                                     attestation_validity_s=1.0, renewal_check_s=0.2))
    platform.start()
    try:
        port = platform.ports["frontend"]
        first = fetch_unverified_certificate("127.0.0.1", port)
        deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=10)
        second = first
        while second == first and dt.datetime.now(dt.UTC) < deadline:
            second = fetch_unverified_certificate("127.0.0.1", port)
        assert second != first
        old_key = x509.load_der_x509_certificate(first).public_key()
        new_key = x509.load_der_x509_certificate(second).public_key()
        assert old_key != new_key  # a new key, a new quote, a new report
        with Client.connect_data_dir(tmp_path / "data", "127.0.0.1",
                                     authentication_port=platform.ports["authentication"],
                                     frontend_port=port) as client:
            client.login("admin", ADMIN_PASSWORD)
        # a session pinned to the old certificate cannot open a new connection
        old_pem = x509.load_der_x509_certificate(first).public_bytes(serialization.Encoding.PEM)
        with Client.connect("127.0.0.1", server_cert=old_pem,
                            authentication_port=platform.ports["authentication"],
                            frontend_port=port, timeout=5) as stale:
            with pytest.raises(ClientError) as e:
                stale.login("admin", ADMIN_PASSWORD)
            assert e.value.code == "UNAVAILABLE"
    finally:
        platform.stop()
