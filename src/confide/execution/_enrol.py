"""A worker node's enrolment with the key service, before it may talk to the scheduler.

1. Attest the key service: fetch its certificate and appraise the RA-TLS
   evidence in it (2.23.133.5.4.9 + collateral 2.23.133.5.4.2) with a policy
   that trusts the sim root (sim only, loudly) and accepts exactly the
   measurement of the confide code this worker runs — the worker refuses to
   send evidence to, or take a secret from, a key service running other code.
   Then pin that certificate for the enrolment channel.
2. ``Challenge`` → nonce; generate the P-256 TLS key and X25519 HPKE key in
   memory; get a sim quote whose REPORTDATA binds nonce, node id, services and
   both public keys (``enrolment_report_data``); ``Enrol``.
3. Open the grant: for a control-plane role, decrypt the root secret and check
   that the CA it derives is the grant's CA (an execution worker receives no
   secret); check the CA against the one the supervisor handed over, if any,
   and that the node certificate is from that CA, for this key and services.

Nothing of this touches the disk; the keys live in this process only.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..attestation import (
    AppraisalPolicy,
    AttestationError,
    EnclaveInfo,
    UnsafeTrustSimRoot,
    fetch_unverified_certificate,
    package_measurement,
    verify_ratls_with_policy,
)
from ..attestation.sim import SimAttester
from ..keys import (
    EnrolmentChallenge,
    EnrolmentError,
    EnrolmentGrant,
    EnrolmentKeys,
    KeysError,
    RootSecret,
    make_enrolment_request,
    open_enrolment_grant,
)
from ..rpc import address_list, key_pem, pin_target_name
from ..rpc._gen import confide_v1_pb2 as v1
from ..rpc._gen import confide_v1_pb2_grpc as v1_grpc

__all__ = [
    "KEY_SERVICE_TABLE",
    "EnrolmentRefused",
    "KeyServicesUnreachable",
    "NodeCredentials",
    "attest_key_service",
    "enrol",
    "enrol_through_any",
    "key_service_addresses",
    "key_service_policy",
]

_log = logging.getLogger("confide.worker.enrol")
#: The enclave_info table the key service's measurement is looked up under
#: (it runs in the scheduler's node).
KEY_SERVICE_TABLE = "teaclave_scheduler_service"
_EVIDENCE_MAX_AGE = dt.timedelta(hours=2)  # the certificate is re-attested hourly


class EnrolmentRefused(Exception):
    """Enrolment failed for good (the key service refused, or was not trusted)."""


class KeyServicesUnreachable(EnrolmentRefused):
    """No listed key service answered before the deadline."""


def key_service_addresses(text: str) -> tuple[str, ...]:
    """The key services of ``HOST:PORT[,HOST:PORT...]`` (``--keys``), in order.

    Raises:
        ValueError: a bad entry (named), or an empty or too long list.
    """
    return address_list(text)


@dataclass(frozen=True)
class NodeCredentials:
    """What enrolment gives a node: its mTLS key/certificate, the CA, the root secret."""

    key_pem: bytes
    cert_pem: bytes
    ca_pem: bytes
    not_after: dt.datetime
    root_secret: RootSecret | None  # only for the roles that open the database


def key_service_policy(attester: SimAttester) -> AppraisalPolicy:
    """Accept a key service running the same confide code as this worker (sim root)."""
    expected = {"mr_enclave": package_measurement("sha256").hex(),
                "mr_signer": attester.measurements["mr_signer"]}
    return AppraisalPolicy([UnsafeTrustSimRoot(attester.root_certificate_der)],
                           EnclaveInfo({KEY_SERVICE_TABLE: expected}),
                           max_evidence_age=_EVIDENCE_MAX_AGE)


def attest_key_service(address: str, policy: AppraisalPolicy, now: dt.datetime) -> bytes:
    """Fetch and appraise the key service's certificate; returns its PEM to pin.

    Raises:
        EnrolmentRefused: the certificate's evidence was refused.
        OSError: the key service is not reachable.
    """
    host, _, port = address.rpartition(":")
    der = fetch_unverified_certificate(host, int(port), limits=policy.limits)
    try:
        verify_ratls_with_policy(der, policy, service=KEY_SERVICE_TABLE, now=now)
    except AttestationError as e:
        raise EnrolmentRefused(f"the key service at {address} failed attestation: {e}") from e
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def _pinned_channel(address: str, pinned_pem: bytes) -> grpc.Channel:
    creds = grpc.ssl_channel_credentials(root_certificates=pinned_pem)
    host = address.rpartition(":")[0].strip("[]")
    return grpc.secure_channel(address, creds, options=[
        ("grpc.ssl_target_name_override", pin_target_name(pinned_pem, host)),
        ("grpc.use_local_subchannel_pool", 1),
    ])


def enrol(
    *,
    key_service: str,
    node_id: str,
    attester: SimAttester,
    ca_pem: bytes | None,
    clock: Callable[[], dt.datetime],
    policy: AppraisalPolicy | None = None,
    timeout: float = 30.0,
    services: tuple[str, ...] = ("execution",),
) -> NodeCredentials:
    """Run the enrolment (module docstring) and return the node's credentials.

    ``ca_pem``: the platform CA this node was told to expect, or None for a
    node that joins by address only (it then trusts the CA the attested key
    service grants over the pinned channel; for a role that receives the root
    secret, the CA that secret derives). ``services``: the roles this node asks
    for; an ``execution`` node receives no root secret.

    Raises:
        EnrolmentRefused: the key service was not trusted or refused this node.
        grpc.RpcError: a transport failure (the caller may retry).
        OSError: the key service is not reachable (the caller may retry).
    """
    pinned = attest_key_service(key_service, policy or key_service_policy(attester), clock())
    keys = EnrolmentKeys.generate()
    with _pinned_channel(key_service, pinned) as channel:
        stub = v1_grpc.KeyServiceStub(channel)
        answer = stub.Challenge(v1.EnrolChallengeRequest(), timeout=timeout)
        challenge = EnrolmentChallenge(
            nonce=answer.nonce, expires_at=dt.datetime.fromtimestamp(answer.expires_at, dt.UTC))
        request = make_enrolment_request(
            challenge, keys, node_id=node_id, services=services,
            get_quote=lambda rd: attester.evidence(rd, now=clock()).quote)
        try:
            reply = stub.Enrol(v1.EnrolRequest(
                node_id=request.node_id, services=list(request.services), nonce=request.nonce,
                tls_public_key_der=request.tls_public_key_der,
                hpke_public_key=request.hpke_public_key, quote=request.quote), timeout=timeout)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.PERMISSION_DENIED:
                raise EnrolmentRefused(f"the key service refused enrolment: {e.details()}") from e
            raise
    grant = EnrolmentGrant(node_certificate_der=reply.node_certificate_der,
                           ca_certificate_der=reply.ca_certificate_der,
                           encrypted_root_secret=reply.encrypted_root_secret)
    try:
        secret, ca_der = open_enrolment_grant(grant, keys, request, clock())
    except (EnrolmentError, KeysError) as e:
        raise EnrolmentRefused(f"the enrolment grant does not check out: {e}") from e
    granted_ca_pem = x509.load_der_x509_certificate(ca_der).public_bytes(
        serialization.Encoding.PEM)
    if ca_pem is not None and granted_ca_pem != ca_pem:
        raise EnrolmentRefused("the granted CA is not the platform CA this worker was given")
    ca_pem = granted_ca_pem
    certificate = x509.load_der_x509_certificate(grant.node_certificate_der)
    _log.info("enrolled as %s (certificate valid until %s)", node_id,
              certificate.not_valid_after_utc.isoformat())
    return NodeCredentials(
        key_pem=key_pem(keys.tls_private_key),
        cert_pem=certificate.public_bytes(serialization.Encoding.PEM), ca_pem=ca_pem,
        not_after=certificate.not_valid_after_utc, root_secret=secret)


def enrol_through_any(
    key_services: Sequence[str],
    *,
    deadline_s: float,
    **enrol_args: Any,
) -> tuple[str, NodeCredentials]:
    """Enrol through the first of ``key_services`` that answers (``enrol`` for the rest
    of the arguments); returns which one it was and the credentials.

    A key service that cannot be reached (or fails in transport) passes the turn to
    the next one; after a round with no answer, rounds repeat with a growing pause
    until ``deadline_s`` (0: one round). A refusal is final: every key service of a
    platform shares one database, policy and revocation list, so another would
    refuse too.

    Raises:
        EnrolmentRefused: refused, or not trusted.
        KeyServicesUnreachable: no key service answered before the deadline.
    """
    deadline = time.monotonic() + deadline_s
    delay = 0.2
    while True:
        failures = []
        for address in key_services:
            try:
                return address, enrol(key_service=address, **enrol_args)
            except (grpc.RpcError, OSError) as e:
                failures.append(f"{address}: {_transport_error(e)}")
        if time.monotonic() + delay > deadline:
            raise KeyServicesUnreachable(
                f"no key service answered ({'; '.join(failures)})")
        _log.warning("no key service answered (%s); retrying in %.1f s",
                     "; ".join(failures), delay)
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def _transport_error(e: Exception) -> str:
    if isinstance(e, grpc.RpcError):
        return f"{e.code().name}: {e.details()}"
    return str(e) or type(e).__name__
