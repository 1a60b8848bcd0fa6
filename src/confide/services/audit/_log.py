"""The audit log: every frontend call, durable at once, tamper-evident.

Each entry carries an HMAC chaining it to the previous one under a key
derived from the platform secret, so an operator can neither edit, delete,
insert nor reorder entries without ``verify_chain`` noticing. Cutting off the
newest entries is detected while the server runs (the head is kept in
memory) but not across a restart; see docs/security.md.

Key rotation (``confide.keys``): each entry records the version of the audit
key that MACed it (``kid``, in its sealed body and inside the MAC), so the
chain verifies across rotations: an entry is checked with its own key, and
its ``prev`` link is the previous entry's MAC whatever key made it. Entries
written before the keyring have no ``kid``, were MACed by version 1 and verify
as before.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import cbor2

from ...crypto.records import VersionedKey, as_versioned
from ...storage import Database, Txn
from ._query import AuditQuery, QuerySyntaxError

__all__ = ["AuditChainBroken", "AuditEntry", "AuditLog", "QuerySyntaxError"]

_TABLE = "audit"
_GENESIS = b"\0" * 32


class AuditChainBroken(Exception):
    """The stored log does not verify: entries were changed, removed or reordered."""


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    microsecond: int
    ip: bytes  # 16 bytes, IPv4 as ::a.b.c.d
    user: str
    message: str
    result: bool


def _mac(key: bytes, prev: bytes, e: AuditEntry, kid: int | None = None) -> bytes:
    fields: list[object] = [e.seq, e.microsecond, e.ip, e.user, e.message, e.result, prev]
    if kid is not None:  # entries before key rotation have none
        fields.append(kid)
    return hmac.new(key, cbor2.dumps(fields), hashlib.sha256).digest()


@dataclass
class _Pending:
    user: str
    message: str
    result: bool
    ip: bytes
    at_us: int
    done: bool = False
    error: Exception | None = None
    #: Set once: when the entry is committed (``done``) or when this caller
    #: becomes the one that writes the next batch.
    wake: threading.Event = field(default_factory=threading.Event)


class AuditLog:
    """Appends are group-committed: concurrent callers share one transaction,
    and each returns only once its own entry is durable.

    One caller at a time (the leader) writes everything queued so far; the
    others sleep on their own event. The leader wakes exactly the callers of
    its batch and hands the lead to the first caller queued meanwhile, so a
    commit costs one wake-up per caller instead of waking every waiter.
    """

    def __init__(self, db: Database, key: bytes | VersionedKey, *,
                 clock: Callable[[], float]) -> None:
        self._db = db
        self.db = db  # callers on the event loop append through ``db.run``
        self._keys = as_versioned(key)
        self._clock = clock
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._leading = False
        with db.read() as txn:
            self._head_seq, self._head_mac = self._load_head(txn)

    def _load_head(self, txn: Txn) -> tuple[int, bytes]:
        for row in txn.scan(_TABLE, order_by="seq", descending=True, limit=1):
            return int(row.id), bytes(row.body["mac"])
        return 0, _GENESIS

    def append(self, *, user: str, message: str, result: bool, ip: bytes) -> None:
        """Record one entry; returns when it is committed (raises if it could not be)."""
        mine = _Pending(user, message, result, ip, int(self._clock() * 1_000_000))
        with self._lock:
            self._queue.append(mine)
            lead = not self._leading
            self._leading = True
        if not lead:
            mine.wake.wait()
        if not mine.done:  # the lead was handed to us: write the queue, ours included
            with self._lock:
                batch, self._queue = self._queue, []
            error = self._write(batch)
            for p in batch:
                p.done, p.error = True, error
                if p is not mine:
                    p.wake.set()
            with self._lock:
                if self._queue:
                    self._queue[0].wake.set()  # still leading: pass it on
                else:
                    self._leading = False
        if mine.error is not None:
            raise mine.error

    def _write(self, batch: list[_Pending]) -> Exception | None:
        try:
            with self._db.write() as txn:
                txn.serialize("audit-chain")
                seq, prev = self._load_head(txn)
                # Fail closed if the newest entries were cut off or replaced while we ran.
                if seq < self._head_seq or (
                        seq == self._head_seq and not hmac.compare_digest(prev, self._head_mac)):
                    raise AuditChainBroken(f"audit log head is #{seq}, expected "
                                           f"#{self._head_seq}: truncated or edited")
                kid, key = self._keys.active()
                for p in batch:
                    seq += 1
                    entry = AuditEntry(seq, p.at_us, p.ip, p.user, p.message, p.result)
                    mac = _mac(key, prev, entry, kid)
                    txn.insert(_TABLE, str(seq), {
                        "us": entry.microsecond, "ip": p.ip, "user": p.user,
                        "message": p.message, "result": p.result, "prev": prev, "mac": mac,
                        "kid": kid})
                    prev = mac
            self._head_seq, self._head_mac = seq, prev
            return None
        except Exception as e:  # noqa: BLE001 - handed to every caller of the batch, raised there
            return e

    def query(self, query: str, limit: int) -> list[AuditEntry]:
        """Newest first, at most ``limit`` entries matching ``query``."""
        parsed = AuditQuery(query)
        found: list[AuditEntry] = []
        if limit <= 0:
            return found
        with self._db.read() as txn:
            for row in txn.scan(_TABLE, order_by="seq", descending=True):
                b = row.body
                if parsed.matches(b["user"], b["message"]):
                    found.append(AuditEntry(int(row.id), b["us"], b["ip"], b["user"],
                                            b["message"], b["result"]))
                    if len(found) >= limit:
                        break
        return found

    def verify_chain(self) -> int:
        """Check every entry and link; returns the number of entries."""
        prev, expected_seq = _GENESIS, 1
        with self._db.read() as txn:
            for row in txn.scan(_TABLE, order_by="seq"):
                b = row.body
                entry = AuditEntry(int(row.id), b["us"], b["ip"], b["user"], b["message"],
                                   b["result"])
                if entry.seq != expected_seq:
                    raise AuditChainBroken(f"entry #{expected_seq} is missing")
                kid = b.get("kid")
                if kid is not None and (type(kid) is not int or not 1 <= kid < 2**32):
                    raise AuditChainBroken(f"entry #{entry.seq} has a malformed key id")
                key = self._keys.key(1 if kid is None else kid)
                if key is None:
                    raise AuditChainBroken(f"entry #{entry.seq} names an unknown key "
                                           f"(audit-{kid})")
                if not hmac.compare_digest(bytes(b["prev"]), prev) or not hmac.compare_digest(
                        bytes(b["mac"]), _mac(key, prev, entry, kid)):
                    raise AuditChainBroken(f"entry #{entry.seq} does not verify")
                prev, expected_seq = bytes(b["mac"]), expected_seq + 1
        return expected_seq - 1
