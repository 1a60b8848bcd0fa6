"""I/O layer: fetch a server's leaf certificate over TLS, without trusting it yet.

The handshake deliberately skips chain and hostname verification (the
certificate is self-signed and carries evidence instead); the caller MUST pass
the returned bytes to ``verify_teaclave_certificate`` or
``verify_ratls_certificate`` and then pin the verified certificate. ALPN
offers ``h2`` like the Teaclave SDK, so the server sees an ordinary gRPC client.
"""

from __future__ import annotations

import socket
import ssl

from ...config import Limits
from .._errors import CertificateFormatError

__all__ = ["fetch_unverified_certificate"]


def fetch_unverified_certificate(
    host: str,
    port: int,
    *,
    timeout: float = 10.0,
    server_hostname: str | None = None,
    limits: Limits | None = None,
) -> bytes:
    """Connect, complete a TLS handshake and return the peer's leaf certificate (DER).

    Args:
        host: server address.
        port: server port.
        timeout: connect and handshake timeout in seconds.
        server_hostname: SNI to send (default: ``host``).
        limits: size caps.

    Returns:
        The DER certificate, UNVERIFIED.

    Raises:
        OSError: connection or TLS failure (``ssl.SSLError`` is an ``OSError``).
        CertificateFormatError: no certificate, or one above the size cap.
    """
    limits = limits if limits is not None else Limits()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # evidence, not a CA, vouches for this certificate
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=server_hostname or host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise CertificateFormatError("certificate-missing", "the server presented no certificate")
    if len(der) > limits.max_certificate_bytes:
        raise CertificateFormatError("certificate-too-large", f"certificate is {len(der)} bytes")
    return der
