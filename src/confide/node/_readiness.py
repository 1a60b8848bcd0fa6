"""What "ready" means for each gRPC server of ``confide serve`` (docs/operations.md).

Three checks, run by a background thread of the server every few seconds:

* ``database``: a read transaction on the database succeeds (it also counts
  the tasks by state and the queue, for the metrics);
* ``attestation``: the evidence in the API certificate being served is fresh:
  younger than twice the re-attestation interval (what clients accept; the
  certificate is re-attested every interval) and the certificate is valid;
* ``workers``: at least one executor was heard from within the executor timeout;
* ``agreement``: a scheduler node on PostgreSQL agrees with the database's clock
  and with the other scheduler nodes' executor timeout
  (``services/scheduler/_agreement.py``; passes everywhere else).

Each server reports the empty service name ("can this server answer its RPCs")
and each service it hosts ("can it do that service's work"):

============== ============================= =============================================
server         ``""`` needs                  each hosted service needs
============== ============================= =============================================
authentication database, attestation         the same
frontend       database, attestation         the same + workers (tasks can run)
scheduler      database, agreement           the same + workers
key service    attestation                   the same
============== ============================= =============================================

The ``workers`` check counts the executors this process's scheduler heard
from. A node without the scheduler role (a frontend replica: its workers pull
from the scheduler nodes) cannot know them, so its frontend's services follow
the empty name there (:func:`rule_for`); the scheduler nodes' named service
says whether tasks can run.

This module is pure: check results in, statuses out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from cryptography import x509

__all__ = ["CHECKS", "RULES", "Checks", "ServerReadiness", "evidence_age", "evidence_fresh",
           "rule_for"]

#: The names of the checks (also the ``check`` label of ``confide_health_check_ok``).
CHECKS = ("database", "attestation", "workers", "agreement")


@dataclass(frozen=True)
class Checks:
    """One round's results."""

    database: bool
    attestation: bool
    workers: bool
    agreement: bool = True

    def passed(self, names: Collection[str]) -> bool:
        return all(getattr(self, name) for name in names)


@dataclass(frozen=True)
class ServerReadiness:
    """The rule of one server (module docstring's table).

    Args:
        base: checks the empty name (and every hosted service) needs.
        per_service: further checks of each hosted service.
    """

    base: frozenset[str]
    per_service: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = (self.base | self.per_service) - set(CHECKS)
        if unknown:
            raise ValueError(f"unknown readiness checks: {sorted(unknown)}")

    def statuses(self, checks: Checks, services: Collection[str]) -> Mapping[str, bool]:
        """SERVING (True) or not, for ``""`` and each of ``services``."""
        overall = checks.passed(self.base)
        service_ok = overall and checks.passed(self.per_service)
        return {"": overall, **dict.fromkeys(services, service_ok)}


#: The rules of the all-in-one server's four gRPC servers.
RULES: Mapping[str, ServerReadiness] = {
    "authentication": ServerReadiness(frozenset({"database", "attestation"})),
    "frontend": ServerReadiness(frozenset({"database", "attestation"}), frozenset({"workers"})),
    "scheduler": ServerReadiness(frozenset({"database", "agreement"}), frozenset({"workers"})),
    "keys": ServerReadiness(frozenset({"attestation"})),
}


def rule_for(role: str, roles: Collection[str]) -> ServerReadiness:
    """The rule of ``role``'s server on a node serving ``roles``."""
    rule = RULES[role]
    if "workers" in rule.per_service and role != "scheduler" and "scheduler" not in roles:
        return ServerReadiness(rule.base, rule.per_service - {"workers"})
    return rule


def evidence_age(certificate_der: bytes, now: dt.datetime) -> dt.timedelta:
    """How old the evidence of an attested certificate is (from its not-before)."""
    certificate = x509.load_der_x509_certificate(certificate_der)
    return now - certificate.not_valid_before_utc


def evidence_fresh(certificate_der: bytes, now: dt.datetime, max_age: dt.timedelta) -> bool:
    """Valid at ``now`` and its evidence younger than ``max_age``."""
    certificate = x509.load_der_x509_certificate(certificate_der)
    not_before = certificate.not_valid_before_utc
    return not_before <= now < certificate.not_valid_after_utc and now - not_before < max_age
