"""The unmodified Teaclave Python SDK's certificate checks (spec §4.2 steps 1-8),
written here independently with ``cryptography`` (not through confide's
checker), against a live ``confide serve`` and the trust files it wrote.

Plus ``teaclave_cli verify``'s rule for the auditors' signatures over
enclave_info.toml, which the SDK itself never checks.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
import socket
import ssl
import tomllib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ._server import Server

TABLES = {"authentication": "teaclave_authentication_service",
          "frontend": "teaclave_frontend_service"}


class TeaclaveSdkRefusal(Exception):
    """What the SDK raises: 'Failed to verify attestation report'."""


def fetch_leaf(port: int) -> bytes:
    """The SDK's TLS client: no chain or hostname check, TLS >= 1.2, ALPN h2."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.selected_alpn_protocol() == "h2"
        der = tls.getpeercert(binary_form=True)
    assert der
    return der


def teaclave_sdk_check(leaf_der: bytes, as_root_pem: bytes, enclave_info_toml: bytes,
                       table: str, now: dt.datetime) -> None:
    """Steps 1-8 of spec §4.2, in the SDK's order; raises TeaclaveSdkRefusal."""
    # 1. parse the leaf certificate
    cert = x509.load_der_x509_certificate(leaf_der)
    # 2. the FIRST extension, whatever its OID, is raw JSON
    first = next(iter(cert.extensions))
    if not isinstance(first.value, x509.UnrecognizedExtension):
        raise TeaclaveSdkRefusal("first extension is not opaque")
    try:
        doc = json.loads(first.value.value)
    except ValueError as e:
        raise TeaclaveSdkRefusal("extension is not JSON") from e
    # 3. exactly report / signature / certs, byte strings as arrays of ints
    if set(doc) != {"report", "signature", "certs"}:
        raise TeaclaveSdkRefusal(f"unexpected fields {sorted(doc)}")
    report = bytes(doc["report"])
    signature = bytes(doc["signature"])
    certs = [x509.load_der_x509_certificate(bytes(c)) for c in doc["certs"]]
    # 4. certs[0] chains to the AS root (+ certs[1:]) at the current time
    root = x509.load_pem_x509_certificate(as_root_pem)
    signer = certs[0]
    issuer = next((c for c in [root, *certs[1:]] if c.subject == signer.issuer), None)
    if issuer is None:
        raise TeaclaveSdkRefusal("report signer does not chain to the AS root")
    try:
        signer.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError) as e:
        raise TeaclaveSdkRefusal("report signer does not chain to the AS root") from e
    for c in (signer, root):
        if not c.not_valid_before_utc <= now <= c.not_valid_after_utc:
            raise TeaclaveSdkRefusal("certificate in the report chain not valid now")
    # 5. RSA PKCS#1 v1.5 SHA-256 signature over the exact report bytes
    key = signer.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise TeaclaveSdkRefusal("report signer is not RSA")
    try:
        key.verify(signature, report, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as e:
        raise TeaclaveSdkRefusal("Failed to verify report signature") from e
    # 6. the report's isvEnclaveQuoteBody, base64, 432 bytes (Teaclave's Rust rule)
    body = base64.b64decode(json.loads(report)["isvEnclaveQuoteBody"])
    if len(body) != 432:
        raise TeaclaveSdkRefusal(f"quote body is {len(body)} bytes")
    # 7. REPORTDATA == the certificate's P-256 point without 0x04 (X‖Y)
    point = cert.public_key().public_bytes(serialization.Encoding.X962,
                                           serialization.PublicFormat.UncompressedPoint)
    if point[0] != 4 or body[368:432] != point[1:]:
        raise TeaclaveSdkRefusal("REPORTDATA does not bind the certificate key")
    # 8. MRENCLAVE / MRSIGNER, lower-case hex, against enclave_info.toml
    info = tomllib.loads(enclave_info_toml.decode())
    if table not in info:
        raise TeaclaveSdkRefusal(f"no [{table}]")
    if body[112:144].hex() != info[table]["mr_enclave"]:
        raise TeaclaveSdkRefusal("mr_enclave mismatch")
    if body[176:208].hex() != info[table]["mr_signer"]:
        raise TeaclaveSdkRefusal("mr_signer mismatch")


def teaclave_cli_verify(enclave_info: bytes, signatures: list[bytes],
                        public_keys_pem: list[bytes]) -> None:
    """``teaclave_cli verify``: every signature valid under some auditor key."""
    keys = [serialization.load_pem_public_key(p) for p in public_keys_pem]
    for sig in signatures:
        for k in keys:
            assert isinstance(k, rsa.RSAPublicKey)
            try:
                k.verify(sig, enclave_info, padding.PKCS1v15(), hashes.SHA256())
                break
            except InvalidSignature:
                continue
        else:
            raise TeaclaveSdkRefusal("enclave_info signature verifies under no auditor key")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _auditor_files(data_dir: Path) -> tuple[list[bytes], list[bytes]]:
    sigs = sorted((data_dir / "auditors").glob("*/*.sign.sha256"))
    keys = sorted((data_dir / "auditors").glob("*/*.public.pem"))
    assert sigs and keys
    return [p.read_bytes() for p in sigs], [p.read_bytes() for p in keys]


def test_teaclave_sdk_checks_pass_against_the_live_server(server: Server) -> None:
    d = server.data_dir
    info = (d / "enclave_info.toml").read_bytes()
    teaclave_cli_verify(info, *_auditor_files(d))
    tables = tomllib.loads(info.decode())
    assert set(tables) == {f"teaclave_{s}_service" for s in (
        "access_control", "authentication", "execution", "frontend", "management",
        "scheduler", "storage")}
    for service, table in TABLES.items():
        leaf = fetch_leaf(server.ports[service])
        teaclave_sdk_check(leaf, (d / "as-root-ca.pem").read_bytes(), info, table, _now())
        # and the leaf is shaped like Teaclave's: P-256, the attestation extension first
        cert = x509.load_der_x509_certificate(leaf)
        assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
        assert next(iter(cert.extensions)).oid.dotted_string == "2.16.840.1.113730.1.13"


def test_teaclave_sdk_checks_refuse_a_measurement_not_in_enclave_info(server: Server) -> None:
    d = server.data_dir
    info = tomllib.loads((d / "enclave_info.toml").read_text())
    for table in TABLES.values():
        info[table]["mr_enclave"] = "00" * 32
    forged = "".join(f'[{t}]\nmr_enclave = "{v["mr_enclave"]}"\nmr_signer = "{v["mr_signer"]}"\n\n'
                     for t, v in info.items()).encode()
    leaf = fetch_leaf(server.ports["frontend"])
    with pytest.raises(TeaclaveSdkRefusal, match="mr_enclave mismatch"):
        teaclave_sdk_check(leaf, (d / "as-root-ca.pem").read_bytes(), forged,
                           TABLES["frontend"], _now())
    # the forged file does not carry the auditors' signature either
    with pytest.raises(TeaclaveSdkRefusal, match="no auditor key"):
        teaclave_cli_verify(forged, *_auditor_files(d))


def test_teaclave_sdk_checks_refuse_a_foreign_as_root(server: Server, tmp_path: Path) -> None:
    from confide.services.attestation_report import ReportAuthority

    other = ReportAuthority.create(_now() - dt.timedelta(minutes=1))
    pem = other.root_certificate.public_bytes(serialization.Encoding.PEM)
    leaf = fetch_leaf(server.ports["authentication"])
    with pytest.raises(TeaclaveSdkRefusal, match="chain"):
        teaclave_sdk_check(leaf, pem, (server.data_dir / "enclave_info.toml").read_bytes(),
                           TABLES["authentication"], _now())


@pytest.fixture(scope="module")
def other_build_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A server whose measured code differs (sim hook: it measures another directory)."""
    root = tmp_path_factory.mktemp("other-build")
    code = root / "code"
    code.mkdir()
    (code / "__init__.py").write_text("# a different build of confide\n")
    s = Server(root / "data", workers=0, extra_env={"CONFIDE_SIM_MEASURE_ROOT": str(code)})
    s.start()
    yield s
    s.stop()


def test_teaclave_sdk_checks_refuse_a_server_not_in_the_signed_enclave_info(
        server: Server, other_build_server: Server) -> None:
    """The audited enclave_info (of the real build) does not list the other build."""
    audited = server.data_dir / "enclave_info.toml"
    teaclave_cli_verify(audited.read_bytes(), *_auditor_files(server.data_dir))
    leaf = fetch_leaf(other_build_server.ports["frontend"])
    as_root = (other_build_server.data_dir / "as-root-ca.pem").read_bytes()
    # its own report chain is fine ...
    own = (other_build_server.data_dir / "enclave_info.toml").read_bytes()
    teaclave_sdk_check(leaf, as_root, own, TABLES["frontend"], _now())
    # ... but its measurement is not the audited one
    with pytest.raises(TeaclaveSdkRefusal, match="mr_enclave mismatch"):
        teaclave_sdk_check(leaf, as_root, audited.read_bytes(), TABLES["frontend"], _now())


def test_sdk_refuses_a_server_not_in_the_signed_enclave_info(
        server: Server, other_build_server: Server, tmp_path: Path) -> None:
    from confide.client import Client, ServerAttestationError

    # audited enclave_info + auditors of the real build, AS root of the other server
    trust = tmp_path / "trust"
    shutil.copytree(server.data_dir / "auditors", trust / "auditors")
    for name in ("enclave_info.toml", "sim-dcap-root.der"):
        shutil.copy(server.data_dir / name, trust / name)
    shutil.copy(other_build_server.data_dir / "as-root-ca.pem", trust / "as-root-ca.pem")
    with pytest.raises(ServerAttestationError) as e:
        Client.connect_data_dir(trust, "127.0.0.1",
                                authentication_port=other_build_server.ports["authentication"],
                                frontend_port=other_build_server.ports["frontend"])
    assert e.value.reason == "mr-enclave-mismatch"


def test_sdk_refuses_a_certificate_from_another_data_dir(
        server: Server, other_build_server: Server) -> None:
    from confide.client import Client, ServerAttestationError

    with pytest.raises(ServerAttestationError) as e:
        Client.connect_data_dir(server.data_dir, "127.0.0.1",
                                authentication_port=other_build_server.ports["authentication"],
                                frontend_port=other_build_server.ports["frontend"])
    assert e.value.reason == "report-signer-untrusted"
