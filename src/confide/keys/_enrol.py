"""Node enrolment: pure protocol pieces (no transport, no state).

The key service that runs the server side (nonces, appraisal, the grant) is
``confide.services.keys.KeyService``; this module holds what both sides share:
the messages, the REPORTDATA binding and the HPKE sealing of the root secret.

Protocol (messages are plain objects; the RPC layer carries them):

1. node → key service: ask for a challenge; the key service answers an
   :class:`EnrolmentChallenge` holding a fresh 32-byte nonce, single use,
   valid for a few minutes.
2. The node generates a P-256 TLS key (for its node certificate) and an X25519
   key (to receive the root secret), and obtains a quote whose REPORTDATA is

       SHA-512( "confide/enrol/v1" ‖ lp(nonce) ‖ lp(node_id) ‖ lp(services)
                ‖ lp(TLS SubjectPublicKeyInfo DER) ‖ lp(X25519 public key) )

   where ``lp(x)`` is a 4-byte big-endian length followed by ``x`` and
   ``services`` is the sorted service names joined by ``,``. SHA-512 fills the
   64 bytes of REPORTDATA exactly.
3. node → key service: :class:`EnrolmentRequest` (the above plus the quote).
4. The key service consumes the nonce (so the evidence cannot be replayed),
   appraises the quote with the injected appraisal (which raises on failure),
   recomputes the REPORTDATA and compares it with the verified one, optionally
   authorises the services for that measurement, then returns an
   :class:`EnrolmentGrant`: a short-lived node certificate from the platform
   CA, the CA certificate, and the root secret encrypted to the node's X25519
   key with HPKE (RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256),
   HKDF-SHA256, AES-256-GCM; ``info`` = context ‖ REPORTDATA).
5. The node decrypts, derives the platform CA from the secret and checks the
   grant's CA certificate and its node certificate against it.

The root secret goes only to nodes whose roles open the platform's database and
keyring (:data:`ROOT_SECRET_ROLES`). An execution worker needs none of it: its
grant carries no secret, and it checks its node certificate against the grant's
CA certificate, which it received over the channel pinned to the attested key
service (and, when its supervisor handed one over, against that CA too).

Nothing secret is returned unless every step of 4 passed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from confide.keys._errors import EnrolmentError, KeysError
from confide.keys._platform_ca import PlatformCA, verify_node_certificate
from confide.keys._root_secret import RootSecret

__all__ = [
    "ROOT_SECRET_ROLES",
    "EnrolmentChallenge",
    "EnrolmentGrant",
    "EnrolmentKeys",
    "EnrolmentRequest",
    "enrolment_report_data",
    "make_enrolment_request",
    "open_enrolment_grant",
    "seal_root_secret",
]

_CONTEXT = b"confide/enrol/v1"
_SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)
_MAX_GRANT_CIPHERTEXT = 256


def _lp(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def enrolment_report_data(
    *,
    nonce: bytes,
    node_id: str,
    services: Sequence[str],
    tls_public_key_der: bytes,
    hpke_public_key: bytes,
) -> bytes:
    """The 64-byte REPORTDATA that binds an enrolment request (see module docstring)."""
    transcript = (
        _CONTEXT
        + _lp(nonce)
        + _lp(node_id.encode("utf-8"))
        + _lp(",".join(sorted(services)).encode("ascii"))
        + _lp(tls_public_key_der)
        + _lp(hpke_public_key)
    )
    return hashlib.sha512(transcript).digest()


@dataclass(frozen=True)
class EnrolmentChallenge:
    """A single-use server nonce and when it stops being accepted."""

    nonce: bytes
    expires_at: dt.datetime


@dataclass(frozen=True)
class EnrolmentRequest:
    """What a node sends: identity, requested services, its two public keys, the quote."""

    node_id: str
    services: tuple[str, ...]
    nonce: bytes
    tls_public_key_der: bytes
    hpke_public_key: bytes
    quote: bytes

    def report_data(self) -> bytes:
        """The REPORTDATA this request's quote must carry."""
        return enrolment_report_data(
            nonce=self.nonce,
            node_id=self.node_id,
            services=self.services,
            tls_public_key_der=self.tls_public_key_der,
            hpke_public_key=self.hpke_public_key,
        )


@dataclass(frozen=True)
class EnrolmentGrant:
    """The key service's answer: node certificate, CA certificate, HPKE-sealed root secret."""

    node_certificate_der: bytes
    ca_certificate_der: bytes
    encrypted_root_secret: bytes


@dataclass(frozen=True)
class EnrolmentKeys:
    """The node's enrolment key pairs; generated inside the node, never exported."""

    tls_private_key: ec.EllipticCurvePrivateKey
    hpke_private_key: x25519.X25519PrivateKey

    @classmethod
    def generate(cls) -> EnrolmentKeys:
        """Fresh P-256 TLS and X25519 HPKE keys."""
        return cls(ec.generate_private_key(ec.SECP256R1()), x25519.X25519PrivateKey.generate())

    @property
    def tls_public_key_der(self) -> bytes:
        """The TLS key's SubjectPublicKeyInfo DER."""
        return self.tls_private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def hpke_public_key(self) -> bytes:
        """The raw 32-byte X25519 public key."""
        return self.hpke_private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )


def make_enrolment_request(
    challenge: EnrolmentChallenge,
    keys: EnrolmentKeys,
    *,
    node_id: str,
    services: Sequence[str],
    get_quote: Callable[[bytes], bytes],
) -> EnrolmentRequest:
    """Node side: obtain the binding quote and assemble the request."""
    services_sorted = tuple(sorted(set(services)))
    report_data = enrolment_report_data(
        nonce=challenge.nonce,
        node_id=node_id,
        services=services_sorted,
        tls_public_key_der=keys.tls_public_key_der,
        hpke_public_key=keys.hpke_public_key,
    )
    return EnrolmentRequest(
        node_id=node_id,
        services=services_sorted,
        nonce=challenge.nonce,
        tls_public_key_der=keys.tls_public_key_der,
        hpke_public_key=keys.hpke_public_key,
        quote=get_quote(report_data),
    )


def _hpke_info(report_data: bytes) -> bytes:
    return _CONTEXT + b"|root-secret|" + report_data


def seal_root_secret(
    root_secret: RootSecret, hpke_public_key: x25519.X25519PublicKey, report_data: bytes
) -> bytes:
    """Key service side, step 4: the root secret encrypted to the node's attested key.

    ``report_data`` is the verified REPORTDATA of the request: it is bound
    into the HPKE ``info``, so the grant opens only for that request.
    """
    return _SUITE.encrypt(
        root_secret.expose_secret_bytes(), hpke_public_key, info=_hpke_info(report_data)
    )


#: The roles whose nodes receive the root secret at enrolment: those that open
#: the database and the keyring. A node of the ``execution`` role alone gets none.
ROOT_SECRET_ROLES = frozenset({"authentication", "frontend", "scheduler", "keys"})


def grants_root_secret(services: Sequence[str]) -> bool:
    """Whether a node enrolling for ``services`` receives the root secret."""
    return not ROOT_SECRET_ROLES.isdisjoint(services)


def open_enrolment_grant(
    grant: EnrolmentGrant,
    keys: EnrolmentKeys,
    request: EnrolmentRequest,
    now: dt.datetime,
) -> tuple[RootSecret | None, bytes]:
    """Node side, step 5: recover the root secret (for the roles that receive it,
    else None) and check the grant; returns it with the CA certificate (DER).

    Raises:
        EnrolmentError: ``grant-decrypt-failed``, ``grant-ca-mismatch``,
            ``grant-certificate-mismatch``.
    """
    secret: RootSecret | None = None
    if grants_root_secret(request.services):
        if len(grant.encrypted_root_secret) > _MAX_GRANT_CIPHERTEXT:
            raise EnrolmentError("grant-decrypt-failed", "sealed root secret too large")
        try:
            secret_bytes = _SUITE.decrypt(
                grant.encrypted_root_secret,
                keys.hpke_private_key,
                info=_hpke_info(request.report_data()),
            )
        except (InvalidTag, ValueError) as e:
            raise EnrolmentError("grant-decrypt-failed", "cannot open the root secret") from e
        secret = RootSecret(secret_bytes)
        if not hmac.compare_digest(PlatformCA.from_root_secret(secret).certificate_der,
                                   grant.ca_certificate_der):
            raise EnrolmentError("grant-ca-mismatch", "the CA is not the one the secret derives")
    try:
        ca_certificate = x509.load_der_x509_certificate(grant.ca_certificate_der)
        services = verify_node_certificate(ca_certificate, grant.node_certificate_der, now)
    except ValueError as e:
        raise EnrolmentError("grant-ca-mismatch", "the CA certificate does not parse") from e
    except KeysError as e:
        raise EnrolmentError("grant-certificate-mismatch", str(e)) from e
    node_key = x509.load_der_x509_certificate(grant.node_certificate_der).public_key()
    if node_key != keys.tls_private_key.public_key() or services != frozenset(request.services):
        raise EnrolmentError("grant-certificate-mismatch", "certificate is not for this request")
    return secret, grant.ca_certificate_der
