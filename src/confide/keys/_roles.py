"""Node roles: which measurement may hold which role, which role may call which RPC.

A node of a distributed deployment proves its evidence to the key service when
it joins and receives a certificate naming its roles (``confide://service/<role>``,
``confide.keys._platform_ca``). Two tables decide what that is worth:

* :class:`RoleMeasurements`: each role has its own table of ``enclave_info.toml``
  (auditor-signed), named by :data:`ROLE_TABLES`; a node is granted a role only
  when its *verified* measurements equal that table's entry.
* :data:`INTERNAL_RPC_POLICY`: the inbound policy of every internal RPC, by
  full method name: the roles whose certificate may call it. An RPC absent
  from the table accepts nobody (fails closed).

Pure: no transport, no clock, no storage.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Mapping

from confide.keys._errors import KeysError, PeerNotAllowedError

__all__ = [
    "INTERNAL_RPC_POLICY",
    "NODE_ROLES",
    "ROLE_TABLES",
    "RoleMeasurements",
    "check_rpc",
    "is_revoked_id",
]

#: The enclave_info table each role's measurement is listed under (Teaclave's
#: service tables; the key service runs under the scheduler's, as it always did).
ROLE_TABLES: dict[str, str] = {
    "authentication": "teaclave_authentication_service",
    "frontend": "teaclave_frontend_service",
    "scheduler": "teaclave_scheduler_service",
    "keys": "teaclave_scheduler_service",
    "execution": "teaclave_execution_service",
}

#: Every role a node certificate may name.
NODE_ROLES = tuple(sorted(ROLE_TABLES))

_WORKER_RPCS = ("PullTask", "ReportAndPull", "Heartbeat", "UpdateTaskResult")

#: Which role may call which internal RPC (full gRPC method name → roles).
#: docs/architecture.md, "Inbound policy", shows the same table.
INTERNAL_RPC_POLICY: dict[str, frozenset[str]] = {
    **{f"/confide.v1.Scheduler/{m}": frozenset({"execution"}) for m in _WORKER_RPCS},
}


def check_rpc(method: str, caller_roles: Collection[str]) -> str:
    """The caller role that authorises calling ``method``.

    Raises:
        PeerNotAllowedError: ``peer-not-allowed``, naming the roles and the RPC.
    """
    allowed = sorted(INTERNAL_RPC_POLICY.get(method, frozenset()) & frozenset(caller_roles))
    if not allowed:
        roles = ",".join(sorted(caller_roles)) or "none"
        raise PeerNotAllowedError("peer-not-allowed", f"role {roles} may not call {method}")
    return allowed[0]


def is_revoked_id(node_id: str, revoked: Collection[str]) -> str | None:
    """The revoked entry that covers ``node_id`` (itself, or its host prefix ``host/…``)."""
    for entry in revoked:
        if node_id == entry or node_id.startswith(entry + "/"):
            return entry
    return None


class RoleMeasurements:
    """Which measurements may hold which role: ``{enclave_info table: measurements}``."""

    def __init__(self, tables: Mapping[str, Mapping[str, str]]) -> None:
        """``tables``: the (auditor-checked) enclave_info tables."""
        self._tables = {t: dict(m) for t, m in tables.items()}

    def check(self, roles: Collection[str], measurements: Mapping[str, str]) -> None:
        """Accept a node with these verified ``measurements`` for every one of ``roles``.

        Raises:
            KeysError: ``unknown-role`` or ``measurement-not-listed`` (naming the role).
        """
        for role in sorted(roles):
            table = ROLE_TABLES.get(role)
            if table is None:
                raise KeysError("unknown-role", f"no such role {role!r}")
            expected = self._tables.get(table)
            if not expected or not all(
                hmac.compare_digest(str(measurements.get(k, "")).lower(), v.lower())
                for k, v in expected.items()
            ):
                got = measurements.get("mr_enclave") or measurements.get("mrtd") or "?"
                raise KeysError("measurement-not-listed",
                                f"measurement {got} is not listed for role {role} ({table})")
