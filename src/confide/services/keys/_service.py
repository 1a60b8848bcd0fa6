"""The key service: enrols attested nodes and hands them the platform secret.

Server side of the enrolment protocol of ``confide.keys._enrol`` (steps 1 and
4 there): single-use challenges, appraisal of the node's evidence (injected),
the binding check of the quote's REPORTDATA, then the grant — a short-lived
node certificate from the platform CA and the root secret sealed to the
node's attested key. Pure: the transport (``confide.api.keys``) and the
clock are outside.
"""

from __future__ import annotations

import datetime as dt
import hmac
import os
from collections.abc import Callable, Sequence
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519

from ...config import Limits
from ...keys import (
    EnrolmentChallenge,
    EnrolmentError,
    EnrolmentGrant,
    EnrolmentRequest,
    KeysError,
    PlatformCA,
    RootSecret,
    grants_root_secret,
    seal_root_secret,
)

__all__ = ["Appraise", "KeyService", "NonceBook"]

_NONCE_BYTES = 32
_NONCE_LIFETIME = dt.timedelta(minutes=5)
_MAX_OUTSTANDING_NONCES = 10_000
_X25519_BYTES = 32
_MAX_SPKI_BYTES = 256


class _Verdict(Protocol):
    @property
    def report_data(self) -> bytes: ...


Appraise = Callable[[bytes, dt.datetime], _Verdict]
"""Appraisal of enrolment evidence: ``(quote, now)`` → verdict; raises when refused."""


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


class KeyService:
    """The key service's enrolment logic (pure; the transport and clock are outside)."""

    def __init__(
        self,
        root_secret: RootSecret,
        appraise: Appraise,
        *,
        nonces: NonceBook | None = None,
        authorize_services: Callable[[_Verdict, Sequence[str]], None] | None = None,
        check_node: Callable[[str], None] | None = None,
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
            check_node: optional, raises when this node id may not join at all
                (e.g. the operator revoked it).
            node_certificate_lifetime: lifetime of issued node certificates.
            limits: size caps.
        """
        self._root_secret = root_secret
        self._ca = PlatformCA.from_root_secret(root_secret)
        self._appraise = appraise
        self._nonces = nonces if nonces is not None else NonceBook()
        self._authorize_services = authorize_services
        self._check_node = check_node
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
        if self._check_node is not None:
            self._check_node(request.node_id)
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
        # Only the roles that open the database and keyring get the secret.
        encrypted = (seal_root_secret(self._root_secret, hpke_key, expected)
                     if grants_root_secret(request.services) else b"")
        return EnrolmentGrant(
            node_certificate_der=node_certificate,
            ca_certificate_der=self._ca.certificate_der,
            encrypted_root_secret=encrypted,
        )
