"""Readiness rules of each server (server/_readiness.py) and the name a client pins.

Threats: a server reported SERVING while its database is gone or its evidence
too old for clients to accept (traffic sent to a node that can only fail); a
pinned name that does not match the certificate (gRPC core's "No match found
for server name" on every handshake, or a refused connection).
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from confide.node._readiness import (
    RULES,
    Checks,
    ServerReadiness,
    evidence_age,
    evidence_fresh,
    rule_for,
)
from confide.rpc import api_certificate, pin_target_name

NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
ALL_OK = Checks(database=True, attestation=True, workers=True)


@pytest.mark.parametrize(("role", "checks", "overall", "services"), [
    ("frontend", ALL_OK, True, True),
    ("frontend", Checks(True, True, False), True, False),  # answers, but tasks cannot run
    ("frontend", Checks(False, True, True), False, False),
    ("frontend", Checks(True, False, True), False, False),  # clients would refuse it
    ("authentication", Checks(True, True, False), True, True),
    ("authentication", Checks(False, True, True), False, False),
    ("scheduler", Checks(True, False, False), True, False),  # workers may still enrol
    ("scheduler", Checks(True, False, True), True, True),
    ("scheduler", Checks(False, True, True), False, False),
    ("keys", Checks(False, True, False), True, True),  # enrolment needs no database
    ("keys", Checks(True, False, True), False, False),
])
def test_each_server_reports_its_own_readiness(role: str, checks: Checks, overall: bool,
                                               services: bool) -> None:
    statuses = RULES[role].statuses(checks, ["a.Service", "b.Service"])
    assert statuses == {"": overall, "a.Service": services, "b.Service": services}


def test_a_frontend_without_the_scheduler_role_does_not_wait_for_workers_it_cannot_see(
) -> None:
    """Its workers pull from the scheduler nodes: its named services follow the empty name."""
    no_workers = Checks(True, True, False)
    alone = rule_for("frontend", {"authentication", "frontend"})
    assert alone.statuses(no_workers, ["a.Service"]) == {"": True, "a.Service": True}
    assert alone.statuses(Checks(False, True, True), ["a.Service"]) == {
        "": False, "a.Service": False}
    together = rule_for("frontend", {"frontend", "scheduler"})
    assert together.statuses(no_workers, ["a.Service"]) == {"": True, "a.Service": False}
    assert rule_for("scheduler", {"scheduler"}) == RULES["scheduler"]


def test_rules_name_only_known_checks() -> None:
    with pytest.raises(ValueError, match="unknown readiness checks"):
        ServerReadiness(frozenset({"database", "moon-phase"}))


def _certificate(not_before: dt.datetime, days: int = 90, dns: tuple[str, ...] = (),
                 cn: str = "CN=Teaclave") -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (x509.CertificateBuilder().issuer_name(name).subject_name(name).serial_number(1)
               .public_key(key.public_key()).not_valid_before(not_before)
               .not_valid_after(not_before + dt.timedelta(days=days)))
    if dns:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns]), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize(("issued", "fresh"), [
    (NOW - dt.timedelta(minutes=30), True),
    (NOW - dt.timedelta(hours=2, seconds=1), False),  # re-attestation has been failing
    (NOW + dt.timedelta(minutes=5), False),  # not yet valid: the clock went back
])
def test_attestation_is_fresh_only_within_the_evidence_age(issued: dt.datetime,
                                                           fresh: bool) -> None:
    der = _certificate(issued)
    assert evidence_fresh(der, NOW, dt.timedelta(hours=2)) is fresh
    assert evidence_age(der, NOW) == NOW - issued.replace(microsecond=0)


def test_an_expired_certificate_is_not_fresh() -> None:
    der = _certificate(NOW - dt.timedelta(days=2), days=1)
    assert evidence_fresh(der, NOW, dt.timedelta(days=30)) is False


@pytest.mark.parametrize(("host", "name"), [
    ("localhost", "localhost"),
    ("API.example.test", "API.example.test"),  # DNS names compare case-insensitively
    ("127.0.0.1", "localhost"),  # an address: the certificate's first name
    ("alias.example.test", "localhost"),
])
def test_pin_target_name_is_a_name_the_certificate_carries(host: str, name: str) -> None:
    der = _certificate(NOW, dns=("localhost", "api.example.test"))
    assert pin_target_name(der, host) == name


def test_pin_target_name_falls_back_to_the_cn_of_a_certificate_without_names() -> None:
    """Teaclave's own servers: no SAN, subject CN ``CN=Teaclave``."""
    pair = api_certificate(NOW)
    assert pin_target_name(pair.cert_pem, "localhost") == "CN=Teaclave"
