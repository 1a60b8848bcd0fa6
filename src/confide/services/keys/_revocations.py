"""Revoked nodes: the operator's list of node ids that may no longer join or call.

An entry revokes the node id itself and every id under it (``host-a`` covers
``host-a/executor-…``, every worker of that host). The key service refuses a
revoked node's enrolment; the internal servers refuse its calls even while its
certificate is still valid. Rows are sealed like every other record, so a
database that drops one is detected on the next read. Reads are cached for
``ttl_s`` (a revocation takes effect within that time on every node).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ...keys import is_revoked_id
from ...storage import Conflict, Database

__all__ = ["NodeRevocations", "Revocation", "RevocationError"]

TABLE = "revoked_nodes"
_MAX_ID_CHARS = 128
_MAX_REASON_CHARS = 256


class RevocationError(ValueError):
    """A revocation request the service refuses (bad node id or reason)."""


@dataclass(frozen=True)
class Revocation:
    node_id: str
    reason: str
    revoked_at: float


class NodeRevocations:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time,
                 ttl_s: float = 2.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self._clock = clock
        self._ttl = ttl_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, Revocation]] | None = None

    def revoke(self, node_id: str, reason: str) -> Revocation:
        """Revoke ``node_id`` (and every ``node_id/…``); revoking again keeps the first."""
        if not node_id or len(node_id) > _MAX_ID_CHARS or not node_id.isprintable():
            raise RevocationError(f"node id must be 1..{_MAX_ID_CHARS} printable characters")
        if len(reason) > _MAX_REASON_CHARS or not reason.isprintable():
            raise RevocationError(f"reason must be at most {_MAX_REASON_CHARS} printable "
                                  "characters")
        entry = Revocation(node_id, reason, self._clock())
        try:
            with self._db.write() as txn:
                if txn.get(TABLE, node_id) is None:
                    txn.insert(TABLE, node_id, {"node_id": node_id, "reason": reason,
                                                "revoked_at": entry.revoked_at})
        except Conflict:  # revoked by someone else at the same time: theirs stands
            pass
        with self._lock:
            self._cached = None
        return self.all()[node_id]

    def all(self) -> dict[str, Revocation]:
        """Every revocation, by node id (read through the cache)."""
        now = self._monotonic()
        with self._lock:
            if self._cached is not None and now - self._cached[0] < self._ttl:
                return self._cached[1]
        with self._db.read() as txn:
            found = {row.id: Revocation(str(row.body["node_id"]), str(row.body["reason"]),
                                        float(row.body["revoked_at"]))
                     for row in txn.scan(TABLE)}
        with self._lock:
            self._cached = (now, found)
        return found

    def covering(self, node_id: str) -> Revocation | None:
        """The revocation that covers ``node_id``, or None."""
        revoked = self.all()
        entry = is_revoked_id(node_id, revoked)
        return None if entry is None else revoked[entry]
