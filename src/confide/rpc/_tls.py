"""Certificates for the platform's endpoints, in one place.

* The client API endpoints present a Teaclave-shaped self-signed P-256
  certificate (spec §1.2). The attestation work replaces ``api_certificate``
  with one that carries evidence; callers only see PEM pairs.
* Internal endpoints (scheduler ← workers) use mutual TLS under the platform
  CA (``confide.keys.PlatformCA``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["PemPair", "api_certificate", "key_pem"]


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
