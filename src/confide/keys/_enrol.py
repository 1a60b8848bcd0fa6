"""Node enrolment: pure protocol pieces (no transport).

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

Nothing secret is returned unless every step of 4 passed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from confide.config import Limits
from confide.keys._errors import EnrolmentError, KeysError
from confide.keys._platform_ca import PlatformCA
from confide.keys._root_secret import RootSecret

__all__ = [
    "EnrolmentChallenge",
    "EnrolmentGrant",
    "EnrolmentKeys",
    "EnrolmentRequest",
    "KeyService",
    "NonceBook",
    "enrolment_report_data",
    "make_enrolment_request",
    "open_enrolment_grant",
]

_CONTEXT = b"confide/enrol/v1"
_NONCE_BYTES = 32
_NONCE_LIFETIME = dt.timedelta(minutes=5)
_MAX_OUTSTANDING_NONCES = 10_000
_SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)
_X25519_BYTES = 32
_MAX_SPKI_BYTES = 256
_MAX_GRANT_CIPHERTEXT = 256


class _Verdict(Protocol):
    @property
    def report_data(self) -> bytes: ...


Appraise = Callable[[bytes, dt.datetime], _Verdict]
"""Appraisal of enrolment evidence: ``(quote, now)`` → verdict; raises when refused."""


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


class NonceBook:
    """Outstanding enrolment nonces, each accepted once before it expires (in memory)."""

    def __init__(
        self,
        *,
        lifetime: dt.timedelta = _NONCE_LIFETIME,
        randbytes: Callable[[int], bytes] = os.urandom,
        max_outstanding: int = _MAX_OUTSTANDING_NONCES,
    ) -> None:
        """Create an empty book."""
        self._lifetime = lifetime
        self._randbytes = randbytes
        self._max_outstanding = max_outstanding
        self._outstanding: dict[bytes, dt.datetime] = {}

    def issue(self, now: dt.datetime) -> EnrolmentChallenge:
        """A new challenge; expired nonces are forgotten first.

        Raises:
            EnrolmentError: ``too-many-challenges`` when the book is full.
        """
        self._outstanding = {n: t for n, t in self._outstanding.items() if t >= now}
        if len(self._outstanding) >= self._max_outstanding:
            raise EnrolmentError("too-many-challenges", "too many outstanding challenges")
        nonce = self._randbytes(_NONCE_BYTES)
        expires_at = now + self._lifetime
        self._outstanding[nonce] = expires_at
        return EnrolmentChallenge(nonce=nonce, expires_at=expires_at)

    def consume(self, nonce: bytes, now: dt.datetime) -> None:
        """Accept ``nonce`` once.

        Raises:
            EnrolmentError: ``nonce-unknown-or-used`` (never issued, or replayed) or
                ``nonce-expired``.
        """
        expires_at = self._outstanding.pop(bytes(nonce), None)
        if expires_at is None:
            raise EnrolmentError("nonce-unknown-or-used", "unknown or already used nonce")
        if now > expires_at:
            raise EnrolmentError("nonce-expired", "the enrolment challenge expired")


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


class KeyService:
    """The key service's enrolment logic (pure; the transport and clock are outside)."""

    def __init__(
        self,
        root_secret: RootSecret,
        appraise: Appraise,
        *,
        nonces: NonceBook | None = None,
        authorize_services: Callable[[_Verdict, Sequence[str]], None] | None = None,
        node_certificate_lifetime: dt.timedelta = dt.timedelta(hours=24),
        limits: Limits | None = None,
    ) -> None:
        """Create the service.

        Args:
            root_secret: the platform secret handed to enrolled nodes.
            appraise: verifies and appraises a quote (raises when refused).
            nonces: the challenge book (a fresh in-memory one by default).
            authorize_services: optional, raises when a verified node may not
                host the services it asks for (e.g. by measurement).
            node_certificate_lifetime: lifetime of issued node certificates.
            limits: size caps.
        """
        self._root_secret = root_secret
        self._ca = PlatformCA.from_root_secret(root_secret)
        self._appraise = appraise
        self._nonces = nonces if nonces is not None else NonceBook()
        self._authorize_services = authorize_services
        self._lifetime = node_certificate_lifetime
        self._limits = limits if limits is not None else Limits()

    def challenge(self, now: dt.datetime) -> EnrolmentChallenge:
        """Step 1: a fresh single-use nonce."""
        return self._nonces.issue(now)

    def _parse_keys(
        self, request: EnrolmentRequest
    ) -> tuple[ec.EllipticCurvePublicKey, x25519.X25519PublicKey]:
        if len(request.tls_public_key_der) > _MAX_SPKI_BYTES:
            raise EnrolmentError("request-invalid", "TLS public key too large")
        try:
            tls_key = serialization.load_der_public_key(request.tls_public_key_der)
            hpke_key = x25519.X25519PublicKey.from_public_bytes(request.hpke_public_key)
        except ValueError as e:
            raise EnrolmentError("request-invalid", "malformed public key") from e
        if not isinstance(tls_key, ec.EllipticCurvePublicKey) or not isinstance(
            tls_key.curve, ec.SECP256R1
        ):
            raise EnrolmentError("request-invalid", "the TLS key must be P-256")
        return tls_key, hpke_key

    def enrol(self, request: EnrolmentRequest, now: dt.datetime) -> EnrolmentGrant:
        """Steps 4: check the request and, only if everything passes, grant.

        Raises:
            EnrolmentError: ``request-invalid``, ``nonce-unknown-or-used``,
                ``nonce-expired``, ``evidence-binding-mismatch``.
            KeysError: bad service names or node id.
            Exception: whatever ``appraise`` / ``authorize_services`` raise, unchanged.
        """
        if len(request.quote) > self._limits.max_ratls_quote_bytes:
            raise EnrolmentError("request-invalid", "quote too large")
        if len(request.hpke_public_key) != _X25519_BYTES:
            raise EnrolmentError("request-invalid", "HPKE key must be 32 bytes")
        if len(request.services) > self._limits.max_enrolment_services:
            raise KeysError("too-many-services", f"{len(request.services)} services")
        tls_key, hpke_key = self._parse_keys(request)
        # Consume first: a refused or replayed request burns its nonce either way.
        self._nonces.consume(request.nonce, now)
        verdict = self._appraise(request.quote, now)
        expected = request.report_data()
        if not hmac.compare_digest(bytes(verdict.report_data), expected):
            raise EnrolmentError(
                "evidence-binding-mismatch", "the quote does not bind this request's keys and nonce"
            )
        if self._authorize_services is not None:
            self._authorize_services(verdict, request.services)
        node_certificate = self._ca.issue_node_certificate(
            tls_key,
            node_id=request.node_id,
            services=request.services,
            now=now,
            lifetime=self._lifetime,
            limits=self._limits,
        )
        encrypted = _SUITE.encrypt(
            self._root_secret.expose_secret_bytes(), hpke_key, info=_hpke_info(expected)
        )
        return EnrolmentGrant(
            node_certificate_der=node_certificate,
            ca_certificate_der=self._ca.certificate_der,
            encrypted_root_secret=encrypted,
        )


def open_enrolment_grant(
    grant: EnrolmentGrant,
    keys: EnrolmentKeys,
    request: EnrolmentRequest,
    now: dt.datetime,
) -> tuple[RootSecret, PlatformCA]:
    """Node side, step 5: recover the root secret and check the grant against it.

    Raises:
        EnrolmentError: ``grant-decrypt-failed``, ``grant-ca-mismatch``,
            ``grant-certificate-mismatch``.
    """
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
    ca = PlatformCA.from_root_secret(secret)
    if not hmac.compare_digest(ca.certificate_der, grant.ca_certificate_der):
        raise EnrolmentError("grant-ca-mismatch", "the CA is not the one the secret derives")
    try:
        services = ca.verify_node_certificate(grant.node_certificate_der, now)
    except KeysError as e:
        raise EnrolmentError("grant-certificate-mismatch", str(e)) from e
    node_key = x509.load_der_x509_certificate(grant.node_certificate_der).public_key()
    if node_key != keys.tls_private_key.public_key() or services != frozenset(request.services):
        raise EnrolmentError("grant-certificate-mismatch", "certificate is not for this request")
    return secret, ca
