"""Node-to-node mutual TLS with the platform CA through grpcio, plus the inbound policy."""

from __future__ import annotations

import datetime as dt
from concurrent import futures

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from confide.keys import (
    DEFAULT_INBOUND_POLICY,
    PeerNotAllowedError,
    PlatformCA,
    RootSecret,
    service_dns_name,
    services_of,
)


def _node(ca: PlatformCA, services: list[str]) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    der = ca.issue_node_certificate(
        key.public_key(),
        node_id="n",
        services=services,
        now=dt.datetime.now(dt.UTC),
    )
    cert_pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert_pem, key_pem


def _call(ca: PlatformCA, port: int, client: tuple[bytes, bytes]) -> bytes:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.certificate_pem(), private_key=client[1], certificate_chain=client[0]
    )
    options = [("grpc.ssl_target_name_override", service_dns_name("storage"))]
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials, options=options) as channel:
        return channel.unary_unary("/t.Storage/Get")(b"k", timeout=5)  # type: ignore[no-any-return]


def test_storage_accepts_management_and_refuses_execution_over_mtls() -> None:
    ca = PlatformCA.from_root_secret(RootSecret.generate())

    def get(request: bytes, context: grpc.ServicerContext) -> bytes:
        peer_pem = context.auth_context()["x509_pem_cert"][0]
        der = x509.load_pem_x509_certificate(peer_pem).public_bytes(serialization.Encoding.DER)
        services = ca.verify_node_certificate(der, dt.datetime.now(dt.UTC))
        try:
            return DEFAULT_INBOUND_POLICY.check("storage", services).encode()
        except PeerNotAllowedError as e:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, e.reason)
            raise  # abort() raises; this line only satisfies the type checker

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "t.Storage", {"Get": grpc.unary_unary_rpc_method_handler(get)}
            ),
        )
    )
    cert_pem, key_pem = _node(ca, ["storage"])
    port = server.add_secure_port(
        "127.0.0.1:0",
        grpc.ssl_server_credentials(
            [(key_pem, cert_pem)],
            root_certificates=ca.certificate_pem(),
            require_client_auth=True,
        ),
    )
    server.start()
    try:
        assert _call(ca, port, _node(ca, ["management"])) == b"management"
        with pytest.raises(grpc.RpcError) as e:
            _call(ca, port, _node(ca, ["execution"]))
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        rogue = PlatformCA.from_root_secret(RootSecret.generate())
        with pytest.raises(grpc.RpcError):  # handshake refused: not our platform CA
            _call(ca, port, _node(rogue, ["management"]))
        assert services_of(
            x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
        ) == {"storage"}
    finally:
        server.stop(None)
