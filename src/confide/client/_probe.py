"""A gRPC health check over confide's TLS, for probes (``confide probe``).

Kubernetes' built-in gRPC probe speaks no TLS, and every confide port does:
an exec probe runs ``confide probe`` in the container instead, trusting the
certificate the server itself wrote to its data directory (``api-cert.pem``)
and, for mutual-TLS ports (the scheduler), presenting a certificate the
platform CA issued. The answer is the ``grpc.health.v1`` status name.
"""

from __future__ import annotations

import grpc
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ..rpc import pin_target_name

__all__ = ["ProbeError", "health_status"]


class ProbeError(Exception):
    """The server could not be asked: unreachable, TLS refused, or it does not host the name."""


def _is_ca(pem: bytes) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(pem)
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (ValueError, x509.ExtensionNotFound):
        return False


def health_status(address: str, ca_pem: bytes, *, service: str = "", server_name: str = "localhost",
                  client_pair: tuple[bytes, bytes] | None = None, timeout_s: float = 3.0) -> str:
    """``SERVING``, ``NOT_SERVING`` or ``UNKNOWN`` for ``service`` at ``address``.

    ``ca_pem`` is the certificate (or CA) to trust; ``client_pair`` is a
    ``(key_pem, cert_pem)`` for servers that want mutual TLS.
    """
    key, cert = client_pair if client_pair is not None else (None, None)
    credentials = grpc.ssl_channel_credentials(ca_pem, private_key=key, certificate_chain=cert)
    # a pinned server certificate: a name it carries; a CA (the platform CA): the name asked for
    target = server_name if _is_ca(ca_pem) else pin_target_name(ca_pem, server_name)
    options = [("grpc.ssl_target_name_override", target)]
    with grpc.secure_channel(address, credentials, options=options) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        except grpc.RpcError as e:
            code = e.code() if isinstance(e, grpc.Call) else None
            detail = e.details() if isinstance(e, grpc.Call) else str(e)
            name = code.name if code is not None else "UNKNOWN"
            if code == grpc.StatusCode.NOT_FOUND:
                detail = f"the server hosts no service named {service!r}"
            raise ProbeError(f"{address}: {name}: {detail}") from None
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
