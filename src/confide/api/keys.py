"""gRPC adapter of the key service (``confide.v1.KeyService``): node enrolment.

Served over server-authenticated TLS only (an enrolling node has no client
certificate yet). Every refusal — replayed nonce, evidence the appraisal
policy refuses, a quote that does not bind the request — is answered
PERMISSION_DENIED with the refusal's reason, and nothing secret is returned.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import grpc

from ..attestation import AttestationError
from ..errors import Code, ServiceError
from ..keys import EnrolmentRequest, KeysError
from ..rpc._gen import confide_v1_pb2 as v1
from ..rpc._gen import confide_v1_pb2_grpc as v1_grpc
from ..services.keys import KeyService
from ..telemetry import reason_of
from ..telemetry._metrics import ATTESTATION_APPRAISALS, ATTESTATION_FAILURES, reason_label

__all__ = ["add_key_servicer"]

_log = logging.getLogger("confide.keys.service")


def _refusal(e: Exception) -> ServiceError:
    reason = getattr(e, "reason", None) or type(e).__name__
    text = str(e)
    if not text.startswith(f"{reason}: "):
        text = f"{reason}: {text}"
    return ServiceError(Code.PERMISSION_DENIED, f"enrolment refused: {text}")


#: ``(node id, peer, refusal)``: records a refused enrolment (the audit log).
RefusalAudit = Callable[[str, str, str], None]


class _KeyService(v1_grpc.KeyServiceServicer):
    def __init__(self, keys: KeyService, clock: Callable[[], dt.datetime],
                 audit: RefusalAudit | None) -> None:
        self._keys = keys
        self._clock = clock
        self._audit = audit

    def Challenge(self, r: v1.EnrolChallengeRequest, c: grpc.aio.ServicerContext
                  ) -> v1.EnrolChallengeResponse:
        try:
            challenge = self._keys.challenge(self._clock())
        except KeysError as e:
            raise ServiceError(Code.RESOURCE_EXHAUSTED, str(e)) from e
        return v1.EnrolChallengeResponse(nonce=challenge.nonce,
                                         expires_at=int(challenge.expires_at.timestamp()))

    def Enrol(self, r: v1.EnrolRequest, c: grpc.aio.ServicerContext) -> v1.EnrolResponse:
        request = EnrolmentRequest(
            node_id=r.node_id, services=tuple(r.services), nonce=r.nonce,
            tls_public_key_der=r.tls_public_key_der, hpke_public_key=r.hpke_public_key,
            quote=r.quote)
        try:
            grant = self._keys.enrol(request, self._clock())
        except (KeysError, AttestationError) as e:
            ATTESTATION_APPRAISALS.labels("enrolment", "refused").inc()
            ATTESTATION_FAILURES.labels("enrolment", reason_label(reason_of(e))).inc()
            _log.warning("enrolment of %r from %s refused: %s", r.node_id[:128], c.peer(), e)
            refusal = _refusal(e)
            if self._audit is not None:
                self._audit(r.node_id[:128], c.peer(), refusal.message)
            raise refusal from e
        ATTESTATION_APPRAISALS.labels("enrolment", "ok").inc()
        _log.info("enrolled node %r for %s", r.node_id[:128], ",".join(request.services))
        return v1.EnrolResponse(node_certificate_der=grant.node_certificate_der,
                                ca_certificate_der=grant.ca_certificate_der,
                                encrypted_root_secret=grant.encrypted_root_secret)


def add_key_servicer(keys: KeyService, server: grpc.aio.Server, *,
                     clock: Callable[[], dt.datetime],
                     audit: RefusalAudit | None = None) -> tuple[str, ...]:
    """Serve ``keys`` on ``server`` (which must use server-authenticated TLS); its full name.

    ``audit``: called for every refused enrolment (node id, peer, reason)."""
    v1_grpc.add_KeyServiceServicer_to_server(_KeyService(keys, clock, audit), server)
    return (v1.DESCRIPTOR.services_by_name["KeyService"].full_name,)
