"""Certificates for the platform's endpoints, in one place.

* The client API endpoints present a Teaclave-shaped self-signed P-256
  certificate (spec §1.2). The attestation work replaces ``api_certificate``
  with one that carries evidence; callers only see PEM pairs.
* Internal endpoints (scheduler ← workers) use mutual TLS under a platform CA
  whose key is derived from the platform root secret, so every node holding
  the secret agrees on it and nothing else can mint a certificate.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["PemPair", "PlatformCA", "api_certificate"]


@dataclass(frozen=True)
class PemPair:
    key_pem: bytes
    cert_pem: bytes


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
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
    return PemPair(_key_pem(key), cert.public_bytes(serialization.Encoding.PEM))


class PlatformCA:
    """The CA for internal mutual TLS; its key is derived from the root secret."""

    def __init__(self, seed: bytes, now: dt.datetime) -> None:
        scalar = int.from_bytes(seed, "big") % (2**256 - 2**224 - 1) + 1
        self._key = ec.derive_private_key(scalar, ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "confide platform CA")])
        self._name = name
        self.cert = (
            x509.CertificateBuilder()
            .issuer_name(name)
            .subject_name(name)
            .serial_number(1)
            .public_key(self._key.public_key())
            .not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
            .not_valid_after(dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self._now = now

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, services: list[str], *, hosts: list[str], lifetime: dt.timedelta) -> PemPair:
        """A node certificate naming ``services`` (SAN URIs ``confide://service/<name>``)."""
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = [
            x509.UniformResourceIdentifier(f"confide://service/{s}") for s in services]
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        cert = (
            x509.CertificateBuilder()
            .issuer_name(self._name)
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ",".join(services))]))
            .serial_number(x509.random_serial_number())
            .public_key(key.public_key())
            .not_valid_before(self._now - dt.timedelta(minutes=5))
            .not_valid_after(self._now + lifetime)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        return PemPair(_key_pem(key), cert.public_bytes(serialization.Encoding.PEM))
