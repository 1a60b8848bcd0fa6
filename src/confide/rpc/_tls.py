"""Certificates for the platform's endpoints, in one place.

* The client API endpoints present a Teaclave-shaped self-signed P-256
  certificate (spec §1.2). The attestation work replaces ``api_certificate``
  with one that carries evidence; callers only see PEM pairs.
* Internal endpoints (scheduler ← workers) use mutual TLS under the platform
  CA (``confide.keys.PlatformCA``).

A client that pins a certificate checks it against one name, which grpcio also
sends as the TLS server name (SNI): :func:`pin_target_name` picks one the
certificate carries, so the server finds its certificate for that name (gRPC
core logs ``No match found for server name`` for every handshake otherwise).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["PemPair", "api_certificate", "key_pem", "pin_target_name"]


@dataclass(frozen=True)
class PemPair:
    key_pem: bytes
    cert_pem: bytes


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def api_certificate(now: dt.datetime) -> PemPair:
    """A fresh P-256 key and a certificate shaped like Teaclave's (spec §1.2)."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Teaclave")]))
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CN=Teaclave")]))
        .serial_number(1)
        .public_key(key.public_key())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=90))
        .sign(key, hashes.SHA256())
    )
    return PemPair(key_pem(key), cert.public_bytes(serialization.Encoding.PEM))


def pin_target_name(certificate: bytes, host: str) -> str:
    """The name to check a pinned ``certificate`` (PEM or DER) against, as SNI too.

    ``host`` (what the client dialled) when the certificate names it as a SAN
    DNS name; else its first SAN DNS name (a client that dialled an IP address
    or an alias); else, for a certificate without SAN DNS names (Teaclave's own
    servers), its subject CN (``CN=Teaclave``), which grpcio then checks.
    """
    if certificate.lstrip().startswith(b"-----BEGIN"):
        cert = x509.load_pem_x509_certificate(certificate)
    else:
        cert = x509.load_der_x509_certificate(certificate)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = []
    if host.lower() in (n.lower() for n in names):
        return host
    if names:
        return names[0]
    common_names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(common_names[0].value) if common_names else host
