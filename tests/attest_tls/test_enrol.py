"""Node enrolment: success, replay, key binding, appraisal failure, grant checks."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

import pytest

from confide.keys import (
    NODE_ROLES,
    ROOT_SECRET_ROLES,
    EnrolmentError,
    EnrolmentKeys,
    EnrolmentRequest,
    PlatformCA,
    RootSecret,
    grants_root_secret,
    make_enrolment_request,
    open_enrolment_grant,
)
from confide.services.keys import KeyService

from ._fakes import NOW, FakeQuoteRefused, FakeVerifier, make_fake_quote

SERVICES = ("scheduler",)  # a control-plane role: it receives the root secret


def _service(appraise: Callable[..., object] | None = None) -> tuple[KeyService, RootSecret]:
    secret = RootSecret.generate()
    return KeyService(secret, appraise or FakeVerifier()), secret  # type: ignore[arg-type]


def _request(service: KeyService, keys: EnrolmentKeys, now: dt.datetime = NOW,
             services: tuple[str, ...] = SERVICES) -> EnrolmentRequest:
    challenge = service.challenge(now)
    return make_enrolment_request(
        challenge, keys, node_id="worker-1", services=services, get_quote=make_fake_quote
    )


def test_enrolment_delivers_root_secret_and_node_certificate() -> None:
    service, secret = _service()
    keys = EnrolmentKeys.generate()
    request = _request(service, keys)
    grant = service.enrol(request, NOW)
    received, ca_der = open_enrolment_grant(grant, keys, request, NOW)
    assert received == secret
    ca = PlatformCA.from_root_secret(secret)
    assert ca_der == ca.certificate_der
    assert ca.verify_node_certificate(grant.node_certificate_der, NOW) == set(SERVICES)
    assert secret.expose_secret_bytes() not in grant.encrypted_root_secret


@pytest.mark.parametrize("services", [("authentication",), ("frontend",), ("scheduler",),
                                      ("keys",), ("execution", "frontend")])
def test_every_control_plane_role_receives_the_secret(services: tuple[str, ...]) -> None:
    assert grants_root_secret(services)


def test_an_execution_worker_receives_no_root_secret() -> None:
    """Secrets reach only the nodes that need them: a worker never opens the
    database or the keyring, so its grant carries nothing secret."""
    service, secret = _service()
    keys = EnrolmentKeys.generate()
    request = _request(service, keys, services=("execution",))
    grant = service.enrol(request, NOW)
    assert grant.encrypted_root_secret == b""
    received, ca_der = open_enrolment_grant(grant, keys, request, NOW)
    assert received is None
    assert ca_der == PlatformCA.from_root_secret(secret).certificate_der
    assert ROOT_SECRET_ROLES == set(NODE_ROLES) - {"execution"}


def test_an_execution_worker_checks_its_certificate_against_the_granted_ca() -> None:
    service, _ = _service()
    keys = EnrolmentKeys.generate()
    request = _request(service, keys, services=("execution",))
    grant = service.enrol(request, NOW)
    rogue, _ = _service()
    rogue_grant = rogue.enrol(_request(rogue, keys, services=("execution",)), NOW)
    mixed = dataclasses.replace(grant, ca_certificate_der=rogue_grant.ca_certificate_der)
    with pytest.raises(EnrolmentError) as e:
        open_enrolment_grant(mixed, keys, request, NOW)
    assert e.value.reason == "grant-certificate-mismatch"
    garbage = dataclasses.replace(grant, ca_certificate_der=b"not a certificate")
    with pytest.raises(EnrolmentError) as e:
        open_enrolment_grant(garbage, keys, request, NOW)
    assert e.value.reason == "grant-ca-mismatch"


def test_rejects_replayed_enrolment_evidence() -> None:
    service, _ = _service()
    keys = EnrolmentKeys.generate()
    request = _request(service, keys)
    service.enrol(request, NOW)
    with pytest.raises(EnrolmentError) as e:
        service.enrol(request, NOW + dt.timedelta(seconds=1))
    assert e.value.reason == "nonce-unknown-or-used"


def test_rejects_evidence_with_an_expired_challenge() -> None:
    service, _ = _service()
    request = _request(service, EnrolmentKeys.generate())
    with pytest.raises(EnrolmentError) as e:
        service.enrol(request, NOW + dt.timedelta(minutes=6))
    assert e.value.reason == "nonce-expired"


def test_rejects_evidence_binding_a_different_key() -> None:
    service, _ = _service()
    keys = EnrolmentKeys.generate()
    request = _request(service, keys)
    attacker = EnrolmentKeys.generate()
    swapped = dataclasses.replace(request, hpke_public_key=attacker.hpke_public_key)
    with pytest.raises(EnrolmentError) as e:
        service.enrol(swapped, NOW)
    assert e.value.reason == "evidence-binding-mismatch"


def test_rejects_evidence_binding_a_different_tls_key_or_services() -> None:
    service, _ = _service()
    keys = EnrolmentKeys.generate()
    request = _request(service, keys)
    other = dataclasses.replace(
        request, tls_public_key_der=EnrolmentKeys.generate().tls_public_key_der
    )
    with pytest.raises(EnrolmentError):
        service.enrol(other, NOW)
    request2 = _request(service, keys)
    more = dataclasses.replace(request2, services=("execution", "storage"))
    with pytest.raises(EnrolmentError) as e:
        service.enrol(more, NOW)
    assert e.value.reason == "evidence-binding-mismatch"


def test_appraisal_failure_returns_nothing_secret() -> None:
    def refuse(quote: bytes, now: dt.datetime) -> object:
        raise FakeQuoteRefused("measurement not in enclave_info")

    service, _ = _service(refuse)
    keys = EnrolmentKeys.generate()
    request = _request(service, keys)
    with pytest.raises(FakeQuoteRefused):
        service.enrol(request, NOW)
    # the nonce was burnt: the same evidence cannot be retried
    with pytest.raises(EnrolmentError):
        service.enrol(request, NOW)


def test_service_authorisation_failure_returns_nothing() -> None:
    secret = RootSecret.generate()

    def only_frontend(verdict: object, services: object) -> None:
        raise EnrolmentError("service-not-authorised", "this measurement may not host execution")

    service = KeyService(secret, FakeVerifier(), authorize_services=only_frontend)
    with pytest.raises(EnrolmentError) as e:
        service.enrol(_request(service, EnrolmentKeys.generate()), NOW)
    assert e.value.reason == "service-not-authorised"


def test_grant_cannot_be_opened_with_another_nodes_key() -> None:
    service, _ = _service()
    keys = EnrolmentKeys.generate()
    request = _request(service, keys)
    grant = service.enrol(request, NOW)
    with pytest.raises(EnrolmentError) as e:
        open_enrolment_grant(grant, EnrolmentKeys.generate(), request, NOW)
    assert e.value.reason == "grant-decrypt-failed"


def test_node_rejects_grant_with_foreign_ca() -> None:
    service, _ = _service()
    keys = EnrolmentKeys.generate()
    request = _request(service, keys)
    grant = service.enrol(request, NOW)
    rogue, _ = _service()
    rogue_grant = rogue.enrol(_request(rogue, keys), NOW)
    mixed = dataclasses.replace(grant, ca_certificate_der=rogue_grant.ca_certificate_der)
    with pytest.raises(EnrolmentError) as e:
        open_enrolment_grant(mixed, keys, request, NOW)
    assert e.value.reason == "grant-ca-mismatch"


def test_quote_over_cap_plus_one_refused() -> None:
    from confide.config import Limits

    secret = RootSecret.generate()
    service = KeyService(secret, FakeVerifier(), limits=Limits(max_ratls_quote_bytes=500))
    request = _request(service, EnrolmentKeys.generate())
    big = dataclasses.replace(request, quote=request.quote + b"\x00" * (501 - len(request.quote)))
    with pytest.raises(EnrolmentError) as e:
        service.enrol(big, NOW)
    assert e.value.reason == "request-invalid"
