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

Each entry also records, as structured fields, the user it is about
(``actor``) and the tasks, functions and files it concerns, with a random salt
and its Merkle leaf hash (``crypto.audit_proof``); the chain MAC covers the
leaf. :meth:`AuditLog.participant_view` hands a participant the entries it may
see with inclusion proofs, for a tree head the server signs.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import cbor2

from ..._suspend import Wake, holding
from ...crypto.audit_proof import SALT_SIZE, AuditLeaf, MerkleTree, legacy_leaf_hash
from ...crypto.records import VersionedKey, as_versioned
from ...storage import Database, Row, Stale, Tampered, Txn
from ._query import AuditQuery, QuerySyntaxError

__all__ = ["AuditChainBroken", "AuditEntry", "AuditLog", "ParticipantView", "QuerySyntaxError",
           "Subjects"]

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
    #: The user the entry is about: the authenticated caller, or the known
    #: account a login attempt named; "" when none (and in older entries).
    actor: str = ""
    subjects: Subjects = field(default_factory=lambda: Subjects())
    salt: bytes = b""
    #: The entry's Merkle leaf hash; b"" in entries written before leaves existed.
    leaf: bytes = b""

    def leaf_fields(self) -> AuditLeaf:
        s = self.subjects
        return AuditLeaf(self.seq, self.microsecond, self.ip, self.user, self.message,
                         self.result, self.actor, s.tasks, s.functions, s.files, self.salt)


@dataclass(frozen=True)
class Subjects:
    """The ids an audit entry concerns, each tuple sorted and duplicate-free."""

    tasks: tuple[str, ...] = ()
    functions: tuple[str, ...] = ()
    files: tuple[str, ...] = ()

    @classmethod
    def of(cls, *, tasks: Iterable[str] = (), functions: Iterable[str] = (),
           files: Iterable[str] = ()) -> Subjects:
        """Ids as a request named them: empty ones dropped, each list capped."""
        def clean(ids: Iterable[str]) -> tuple[str, ...]:
            kept = {i for i in ids if i and len(i) <= _MAX_SUBJECT_CHARS}
            return tuple(sorted(kept)[:_MAX_SUBJECTS])
        return cls(clean(tasks), clean(functions), clean(files))

    def __bool__(self) -> bool:
        return bool(self.tasks or self.functions or self.files)


_MAX_SUBJECTS = 64
_MAX_SUBJECT_CHARS = 256


def _mac(key: bytes, prev: bytes, e: AuditEntry, kid: int | None = None) -> bytes:
    fields: list[object] = [e.seq, e.microsecond, e.ip, e.user, e.message, e.result, prev]
    if e.leaf:  # the leaf commits to the structured fields; older entries have none
        fields.append(e.leaf)
    if kid is not None:  # entries before key rotation have none
        fields.append(kid)
    return hmac.new(key, cbor2.dumps(fields), hashlib.sha256).digest()


def _entry(seq: int, b: Mapping[str, Any]) -> AuditEntry:
    """A stored row's entry (the body is already MAC-checked by storage)."""
    subjects = Subjects(tuple(b.get("tasks", ())), tuple(b.get("functions", ())),
                        tuple(b.get("files", ())))
    return AuditEntry(seq, int(b["us"]), bytes(b["ip"]), str(b["user"]), str(b["message"]),
                      bool(b["result"]), str(b.get("actor", "")), subjects,
                      bytes(b.get("salt", b"")), bytes(b.get("leaf", b"")))


@dataclass(frozen=True)
class _Indexed:
    """What the participant index keeps of one verified entry."""

    actor: str
    subjects: Subjects
    shown: bool  # it has a leaf a participant can recompute


@dataclass(frozen=True)
class ParticipantView:
    """What :meth:`AuditLog.participant_view` returns: entries (newest first), each
    with its inclusion proof in the tree over the first ``size`` entries."""

    size: int
    root: bytes
    entries: list[tuple[AuditEntry, list[bytes]]]
    #: Proves the tree of ``known_size`` leaves is a prefix of this one (RFC 9162).
    consistency: list[bytes] = field(default_factory=list)


@dataclass
class _Pending:
    user: str
    message: str
    result: bool
    ip: bytes
    at_us: int
    actor: str
    subjects: Subjects
    done: bool = False
    error: Exception | None = None
    #: Set once: when the entry is committed (``done``) or when this caller
    #: becomes the one that writes the next batch.
    #: A ``Wake``: a caller on the event loop (``confide._suspend``) parks on it.
    wake: Wake = field(default_factory=Wake)


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
            self._head_row = self._newest(txn)
        self._head_seq, self._head_mac = self._head_of(self._head_row)
        # The participant index: every entry verified so far (``_index_more``).
        self._index_lock = threading.Lock()
        self._index: list[_Indexed] = []
        self._index_mac = _GENESIS
        self._tree = MerkleTree()

    @staticmethod
    def _newest(txn: Txn) -> Row | None:
        for row in txn.scan(_TABLE, order_by="seq", descending=True, limit=1):
            return row
        return None

    @staticmethod
    def _head_of(row: Row | None) -> tuple[int, bytes]:
        return (0, _GENESIS) if row is None else (int(row.id), bytes(row.body["mac"]))

    def append(self, *, user: str, message: str, result: bool, ip: bytes, actor: str = "",
               subjects: Subjects | None = None) -> None:
        """Record one entry; returns when it is committed (raises if it could not be)."""
        mine = _Pending(user, message, result, ip, int(self._clock() * 1_000_000), actor,
                        subjects or Subjects())
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
            if self._head_row is not None:
                try:  # the usual case: this process wrote the head, the database checks it
                    self._append(batch, self._head_row)
                    return None
                except Stale:
                    pass  # another writer appended since (or the head changed): read it
            self._append(batch, None)
            return None
        except Exception as e:  # noqa: BLE001 - handed to every caller of the batch, raised there
            return e

    def _append(self, batch: list[_Pending], known: Row | None) -> None:
        """Append ``batch`` after the head: ``known``, the row this process wrote or
        read last, if it is still the newest byte for byte (``Stale`` otherwise:
        checked by the database, no read); else the newest row, read and verified."""
        last: Row | None = None
        with self._db.write() as txn:
            txn.serialize("audit-chain")
            if known is not None:
                txn.check_newest(_TABLE, known, "seq")
                seq, prev = self._head_seq, self._head_mac
            else:
                seq, prev = self._head_of(self._newest(txn))
                # Fail closed if the newest entries were cut off or replaced while we ran.
                if seq < self._head_seq or (
                        seq == self._head_seq and not hmac.compare_digest(prev, self._head_mac)):
                    raise AuditChainBroken(f"audit log head is #{seq}, expected "
                                           f"#{self._head_seq}: truncated or edited")
            kid, key = self._keys.active()
            for p in batch:
                seq += 1
                entry = AuditEntry(seq, p.at_us, p.ip, p.user, p.message, p.result,
                                   p.actor, p.subjects, os.urandom(SALT_SIZE))
                entry = replace(entry, leaf=entry.leaf_fields().hash())
                mac = _mac(key, prev, entry, kid)
                last = txn.insert(_TABLE, str(seq), {
                    "us": entry.microsecond, "ip": p.ip, "user": p.user,
                    "message": p.message, "result": p.result, "prev": prev, "mac": mac,
                    "kid": kid, "actor": p.actor, "tasks": list(p.subjects.tasks),
                    "functions": list(p.subjects.functions),
                    "files": list(p.subjects.files), "salt": entry.salt,
                    "leaf": entry.leaf})
                prev = mac
        self._head_seq, self._head_mac, self._head_row = seq, prev, last

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
                    found.append(_entry(int(row.id), b))
                    if len(found) >= limit:
                        break
        return found

    def _verified(self, txn: Txn, after: int = 0, prev: bytes = _GENESIS
                  ) -> Iterable[tuple[AuditEntry, bytes, bytes]]:
        """Every entry after #``after`` (whose MAC is ``prev``), oldest first, with its
        leaf hash and MAC; raises at the first that does not verify (a missing,
        edited, reordered or re-linked entry)."""
        expected_seq = after + 1
        rows = iter(self._rows_after(txn, after))
        while True:
            try:
                row = next(rows, None)
            except Tampered as e:  # the row's storage seal (the error names the row)
                raise AuditChainBroken(f"an entry was edited in the database: {e}") from e
            if row is None:
                break
            b = row.body
            entry = _entry(int(row.id), b)
            if entry.seq != expected_seq:
                raise AuditChainBroken(f"entry #{expected_seq} is missing")
            kid = b.get("kid")
            if kid is not None and (type(kid) is not int or not 1 <= kid < 2**32):
                raise AuditChainBroken(f"entry #{entry.seq} has a malformed key id")
            key = self._keys.key(1 if kid is None else kid)
            if key is None:
                raise AuditChainBroken(f"entry #{entry.seq} names an unknown key (audit-{kid})")
            mac = bytes(b["mac"])
            leaf_ok = not entry.leaf or hmac.compare_digest(entry.leaf,
                                                            entry.leaf_fields().hash())
            if not leaf_ok or not hmac.compare_digest(bytes(b["prev"]), prev) or \
                    not hmac.compare_digest(mac, _mac(key, prev, entry, kid)):
                raise AuditChainBroken(f"entry #{entry.seq} does not verify")
            yield entry, entry.leaf or legacy_leaf_hash(mac), mac
            prev, expected_seq = mac, expected_seq + 1

    def _rows_after(self, txn: Txn, after: int) -> Iterable[Row]:
        """The rows after #``after``, oldest first, opening (decrypting) no older one."""
        if after == 0:
            yield from txn.scan(_TABLE, order_by="seq")
            return
        # Newest first, as many as this process wrote since (at least one, to see the
        # head), more when other processes wrote too.
        want = max(self._head_seq - after, 1)
        while True:
            newest = list(txn.scan(_TABLE, order_by="seq", descending=True, limit=want))
            ids = [int(r.id) for r in newest]
            if len(newest) < want or ids[-1] <= after + 1:
                break
            want *= 4
        if not ids or ids[0] < after:
            raise AuditChainBroken(f"audit log head is #{ids[0] if ids else 0}, entry #{after} was "
                                   "verified: truncated")
        yield from reversed([r for r, i in zip(newest, ids, strict=True) if i > after])

    def verify_chain(self) -> int:
        """Check every entry and link; returns the number of entries."""
        count = 0
        with self._db.read() as txn:
            for _ in self._verified(txn):
                count += 1
        return count

    def _index_more(self) -> None:
        """Verify and index the entries appended since the last call (lock held)."""
        # Read before the snapshot: every entry this process committed by now is in it
        # (a later commit may raise the head meanwhile without being a truncation).
        expected = self._head_seq
        with self._db.read() as txn:
            for entry, leaf, mac in self._verified(txn, len(self._index), self._index_mac):
                self._index.append(_Indexed(entry.actor, entry.subjects, bool(entry.leaf)))
                self._tree.append(leaf)
                self._index_mac = mac
        if len(self._index) < expected:  # the newest cut off while we run
            raise AuditChainBroken(f"audit log head is #{len(self._index)}, expected "
                                   f"#{expected}: truncated")

    def participant_view(self, visible: Callable[[str, Subjects], bool], limit: int,
                         *, task: str | None = None, known_size: int = 0) -> ParticipantView:
        """The newest ``limit`` entries ``visible(actor, subjects)`` admits (only those
        naming ``task`` when given), each with its inclusion proof, and the proof that
        the tree of ``known_size`` entries is a prefix of this one.

        Entries are verified (seal, chain MAC, leaf) once, when first indexed: the
        first call walks the whole chain, later ones what was appended since. The
        entries returned are read again and must match their indexed leaf.
        Entries written before the structured fields existed are never shown: a
        participant could not recompute their leaves.
        """
        with holding(self._index_lock):
            self._index_more()
            known = len(self._index)
        # The index only grows: read its first ``known`` items without the lock (the
        # visibility lookups read the database).
        chosen: list[int] = []
        for index in range(known - 1, -1, -1):
            if len(chosen) >= limit:
                break
            item = self._index[index]
            if not item.shown or (task is not None and task not in item.subjects.tasks):
                continue
            if visible(item.actor, item.subjects):
                chosen.append(index)
        with holding(self._index_lock):  # proofs in the tree as it is now (it may have grown)
            size, root = self._tree.size, self._tree.root
            proved = [(i, self._tree.proof(i), self._tree.leaf(i)) for i in chosen]
            consistency = (self._tree.consistency(known_size) if 0 < known_size < size
                           else [])
        entries: list[tuple[AuditEntry, list[bytes]]] = []
        with self._db.read() as txn:
            for index, proof, leaf in proved:
                try:
                    row = txn.get(_TABLE, str(index + 1))
                except Tampered as e:
                    raise AuditChainBroken(f"entry #{index + 1} was edited in the database: "
                                           f"{e}") from e
                if row is None:
                    raise AuditChainBroken(f"entry #{index + 1} is missing")
                entry = _entry(index + 1, row.body)
                if not hmac.compare_digest(entry.leaf_fields().hash(), leaf):
                    raise AuditChainBroken(f"entry #{index + 1} does not verify")
                entries.append((entry, proof))
        return ParticipantView(size, root, entries, consistency)
