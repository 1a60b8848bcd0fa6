"""The platform CA: node certificates for mutual TLS between enrolled nodes.

The CA key is P-256 derived deterministically from the root secret (label
``platform-ca``), and its certificate is built deterministically too (fixed
validity, serial from the key, RFC 6979 signature), so every node holding the
root secret holds the byte-identical CA certificate.

A node certificate names the node's services twice:
* SAN URI ``confide://service/<name>`` per service — what ``services_of`` and
  the inbound policy read;
* SAN DNS ``<name>.svc.confide.internal`` per service — so a grpcio client can
  check it reached the right service with ``grpc.ssl_target_name_override``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from confide.config import Limits
from confide.keys._errors import KeysError, PeerNotAllowedError
from confide.keys._root_secret import RootSecret

__all__ = [
    "DEFAULT_INBOUND_POLICY",
    "SERVICE_URI_PREFIX",
    "InboundPolicy",
    "PlatformCA",
    "service_dns_name",
    "services_of",
]

SERVICE_URI_PREFIX = "confide://service/"
_DNS_SUFFIX = ".svc.confide.internal"
_SERVICE_NAME = re.compile(r"[a-z][a-z0-9_]*")
_CA_NOT_BEFORE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
_CA_NOT_AFTER = dt.datetime(2125, 1, 1, tzinfo=dt.UTC)
_DEFAULT_LIFETIME = dt.timedelta(hours=24)
_MAX_LIFETIME = dt.timedelta(days=7)
_BACKDATE = dt.timedelta(minutes=1)
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def service_dns_name(service: str) -> str:
    """The SAN DNS name a node hosting ``service`` carries (for target-name checks)."""
    return service + _DNS_SUFFIX


def _check_service_names(services: Iterable[str], limits: Limits) -> tuple[str, ...]:
    names = tuple(sorted(set(services)))
    if not names:
        raise KeysError("no-services", "a node certificate must name at least one service")
    if len(names) > limits.max_enrolment_services:
        raise KeysError("too-many-services", f"{len(names)} services")
    for name in names:
        if len(name) > limits.max_service_name_chars or not _SERVICE_NAME.fullmatch(name):
            raise KeysError("bad-service-name", f"invalid service name {name!r}")
    return names


def services_of(cert_der: bytes, limits: Limits | None = None) -> frozenset[str]:
    """The services a node certificate names (its ``confide://service/`` SAN URIs).

    Does NOT verify the certificate; use :meth:`PlatformCA.verify_node_certificate`.
    """
    limits = limits if limits is not None else Limits()
    if len(cert_der) > limits.max_certificate_bytes:
        raise KeysError("certificate-too-large", f"certificate is {len(cert_der)} bytes")
    try:
        certificate = x509.load_der_x509_certificate(cert_der)
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return frozenset()
    except ValueError as e:
        raise KeysError("certificate-invalid", "not a DER X.509 certificate") from e
    uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
    return frozenset(
        uri[len(SERVICE_URI_PREFIX) :]
        for uri in uris
        if uri.startswith(SERVICE_URI_PREFIX)
        and _SERVICE_NAME.fullmatch(uri[len(SERVICE_URI_PREFIX) :])
    )


def _ca_name() -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "confide"),
            x509.NameAttribute(NameOID.COMMON_NAME, "confide platform CA"),
        ]
    )


@dataclass(frozen=True)
class PlatformCA:
    """The platform CA key and certificate (identical on every node with the root secret)."""

    private_key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def from_root_secret(cls, secret: RootSecret) -> PlatformCA:
        """Derive the CA key and its certificate from the root secret, deterministically."""
        seed = int.from_bytes(secret.derive("platform-ca", 48), "big")
        private_key = ec.derive_private_key(seed % (_P256_ORDER - 1) + 1, ec.SECP256R1())
        public_key = private_key.public_key()
        spki = public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        serial = int.from_bytes(hashlib.sha256(spki).digest()[:19], "big") | 1
        certificate = (
            x509.CertificateBuilder()
            .issuer_name(_ca_name())
            .subject_name(_ca_name())
            .serial_number(serial)
            .not_valid_before(_CA_NOT_BEFORE)
            .not_valid_after(_CA_NOT_AFTER)
            .public_key(public_key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .sign(private_key, hashes.SHA256(), ecdsa_deterministic=True)
        )
        return cls(private_key=private_key, certificate=certificate)

    @property
    def certificate_der(self) -> bytes:
        """DER of the CA certificate."""
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def certificate_pem(self) -> bytes:
        """PEM of the CA certificate: the only root of internal mutual TLS."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue_node_certificate(
        self,
        node_public_key: ec.EllipticCurvePublicKey,
        *,
        node_id: str,
        services: Sequence[str],
        now: dt.datetime,
        lifetime: dt.timedelta = _DEFAULT_LIFETIME,
        limits: Limits | None = None,
    ) -> bytes:
        """Issue a short-lived node certificate naming ``services`` (DER).

        Raises:
            KeysError: ``no-services``, ``too-many-services``, ``bad-service-name``,
                ``bad-node-id``, ``bad-lifetime``.
        """
        limits = limits if limits is not None else Limits()
        names = _check_service_names(services, limits)
        if not node_id or len(node_id) > limits.max_id_chars or not node_id.isprintable():
            raise KeysError("bad-node-id", "node id must be 1..max_id_chars printable characters")
        if not dt.timedelta(0) < lifetime <= _MAX_LIFETIME:
            raise KeysError("bad-lifetime", f"lifetime {lifetime} is not in (0, 7 days]")
        general_names: list[x509.GeneralName] = [
            x509.UniformResourceIdentifier(SERVICE_URI_PREFIX + n) for n in names
        ]
        general_names += [x509.DNSName(service_dns_name(n)) for n in names]
        certificate = (
            x509.CertificateBuilder()
            .issuer_name(self.certificate.subject)
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "confide"),
                        x509.NameAttribute(NameOID.COMMON_NAME, node_id),
                    ]
                )
            )
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + lifetime)
            .public_key(node_public_key)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName(general_names), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.private_key.public_key()),
                critical=False,
            )
            .sign(self.private_key, hashes.SHA256())
        )
        return certificate.public_bytes(serialization.Encoding.DER)

    def verify_node_certificate(
        self, cert_der: bytes, now: dt.datetime, limits: Limits | None = None
    ) -> frozenset[str]:
        """:func:`verify_node_certificate` against this CA."""
        return verify_node_certificate(self.certificate, cert_der, now, limits)


def verify_node_certificate(
    ca_certificate: x509.Certificate, cert_der: bytes, now: dt.datetime,
    limits: Limits | None = None,
) -> frozenset[str]:
    """Check a node certificate was issued by ``ca_certificate`` and is valid at ``now``.

    Returns:
        The services it names.

    Raises:
        KeysError: ``certificate-too-large``, ``certificate-untrusted``,
            ``certificate-expired``, ``certificate-not-yet-valid``.
    """
    limits = limits if limits is not None else Limits()
    if len(cert_der) > limits.max_certificate_bytes:
        raise KeysError("certificate-too-large", f"certificate is {len(cert_der)} bytes")
    try:
        certificate = x509.load_der_x509_certificate(cert_der)
        certificate.verify_directly_issued_by(ca_certificate)
    except InvalidSignature as e:
        raise KeysError("certificate-untrusted", "not issued by the platform CA") from e
    except (ValueError, TypeError) as e:
        raise KeysError("certificate-untrusted", "not issued by the platform CA") from e
    if now < certificate.not_valid_before_utc:
        raise KeysError("certificate-not-yet-valid", "node certificate not yet valid")
    if now > certificate.not_valid_after_utc:
        raise KeysError("certificate-expired", "node certificate expired")
    return services_of(cert_der, limits)


class InboundPolicy:
    """Which service may call which: ``{server service: callers}``; fails closed."""

    def __init__(self, table: Mapping[str, Collection[str]]) -> None:
        """Build a policy; services absent from ``table`` accept no caller."""
        self._table = {server: frozenset(callers) for server, callers in table.items()}

    def allowed_callers(self, server_service: str) -> frozenset[str]:
        """The caller services ``server_service`` accepts."""
        return self._table.get(server_service, frozenset())

    def check(self, server_service: str, caller_services: Collection[str]) -> str:
        """Return the caller service that authorises this call.

        Args:
            server_service: the service being called.
            caller_services: the services named by the caller's verified certificate.

        Raises:
            PeerNotAllowedError: ``peer-not-allowed`` when no named service may call.
        """
        allowed = sorted(self.allowed_callers(server_service) & frozenset(caller_services))
        if not allowed:
            raise PeerNotAllowedError(
                "peer-not-allowed",
                f"{sorted(caller_services)} may not call {server_service}",
            )
        return allowed[0]


# Teaclave's [inbound] table (spec Appendix A), with execution → scheduler.
DEFAULT_INBOUND_POLICY = InboundPolicy(
    {
        "authentication": {"frontend"},
        "management": {"frontend"},
        "access_control": {"frontend", "management"},
        "storage": {"management", "scheduler"},
        "scheduler": {"execution"},
    }
)
