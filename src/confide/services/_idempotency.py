"""Idempotency keys: a retried create returns what the first attempt made.

A client that sends ``idempotency-key`` metadata with a create (a function, a
file, a fusion output, a task) and retries after a timeout or a lost
connection gets the id the first attempt created, never a second object, even
when that first attempt committed after the client had given up (issue 12).

The key is the caller's: it is stored per user, with a digest of the RPC name
and the request, in the ``idempotency`` table (MAC-protected like every row),
in the same transaction as the object it made, so a create and its key commit
together or not at all. The same key with a different request is refused
(``IDEMPOTENCY_KEY_REUSED``). Keys are kept ``Limits.idempotency_ttl_s``
(default one day); an older one counts as unused, and each new key removes the
expired ones. Teaclave clients send no key and see no change.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..config import Limits
from ..errors import Code, ServiceError, Violation
from ..storage import Database, Get, Row, Txn

__all__ = ["METADATA_KEY", "IdempotencyKey", "parse_idempotency_key", "run_idempotent",
           "run_idempotent_reading"]

#: The gRPC metadata header (lower case, as gRPC sends it).
METADATA_KEY = "idempotency-key"
_TABLE = "idempotency"
_KEY = re.compile(r"[A-Za-z0-9._:-]+")


def parse_idempotency_key(value: str | None, limits: Limits) -> str | None:
    """The header's value, validated; None when absent."""
    if value is None:
        return None
    if not 8 <= len(value) <= limits.max_idempotency_key_chars or not _KEY.fullmatch(value):
        raise ServiceError(
            Code.INVALID_ARGUMENT,
            f"invalid {METADATA_KEY}: 8 to {limits.max_idempotency_key_chars} characters "
            "of A-Z a-z 0-9 . _ : -",
        ).with_detail("BAD_IDEMPOTENCY_KEY", Violation(METADATA_KEY, "malformed"))
    return value


@dataclass(frozen=True)
class IdempotencyKey:
    """One create's key: whose, which, and a digest of what it asked for."""

    user_id: str
    key: str
    request_digest: bytes
    ttl_s: float
    clock: Callable[[], float]

    @classmethod
    def of(cls, user_id: str, key: str, method: str, request: bytes, limits: Limits,
           clock: Callable[[], float]) -> IdempotencyKey:
        digest = hashlib.sha256(method.encode() + b"\0" + request).digest()
        return cls(user_id, key, digest, limits.idempotency_ttl_s, clock)

    @property
    def _row_id(self) -> str:
        return hashlib.sha256(f"{self.user_id}\0{self.key}".encode()).hexdigest()

    def replay(self, txn: Txn, *, lock: bool = False) -> str | None:
        """The id an earlier request with this key made, or None (unused or expired).

        Raises:
            ServiceError: the key was used for a different request.
        """
        return self._replay(txn.get(_TABLE, self._row_id, lock=lock))

    def _replay(self, row: Row | None) -> str | None:
        if row is None or row.body["created_at"] + self.ttl_s <= self.clock():
            return None
        same_owner = row.body["user_id"] == self.user_id and row.body["key"] == self.key
        if not same_owner or not hmac.compare_digest(bytes.fromhex(row.body["digest"]),
                                                     self.request_digest):
            raise ServiceError(
                Code.INVALID_ARGUMENT,
                f"{METADATA_KEY} {self.key!r} was used for a different request",
            ).with_detail("IDEMPOTENCY_KEY_REUSED", Violation(METADATA_KEY, "used before"),
                          hint="use a new key for each distinct create")
        result: str = row.body["result"]
        return result

    def lookup(self, db: Database) -> str | None:
        """:meth:`replay` in a read transaction of its own (before any other work)."""
        with db.read() as txn:
            return self.replay(txn)

    def remember(self, txn: Txn, result: str, *, stored: Row | None) -> None:
        """Record that this key made ``result``, in the create's own transaction.

        ``stored`` is the key's row as this transaction read (and locked) it: an
        expired use of the same key, or None. Expired keys are purged by their
        plain ``created_at`` in the same statement-only round (no row read):
        whole seconds, so that a key is removed only once its TTL has passed.
        """
        now = self.clock()
        body = {"user_id": self.user_id, "key": self.key, "digest": self.request_digest.hex(),
                "result": result, "created_at": now}
        if stored is None:
            txn.insert(_TABLE, self._row_id, body, created_at=int(now))
        else:
            txn.update(_TABLE, self._row_id, body, created_at=int(now))
        # int(created) <= created: a column below floor(now - ttl) is a key past its TTL.
        txn.delete_below(_TABLE, "created_at", math.floor(now - self.ttl_s))


def run_idempotent(db: Database, key: IdempotencyKey | None,
                   create: Callable[[Txn], str]) -> str:
    """``create`` in a write transaction, or the id a first attempt with ``key`` made.

    ``create`` inserts the object and returns its id; with a key, the key is
    recorded in the same transaction.
    """
    return run_idempotent_reading(db, key, (), lambda txn, _rows: create(txn))


def run_idempotent_reading(db: Database, key: IdempotencyKey | None, reads: Sequence[Get],
                           create: Callable[[Txn, list[Row | None]], str]) -> str:
    """:func:`run_idempotent` for a ``create`` that needs rows first: ``reads``
    are read with the key's row (locked) in one round trip and passed to it.

    The key is checked before ``create`` runs, so a retry gets the first
    attempt's id even if validating the request again would now fail.
    """
    gets = [*reads, Get(_TABLE, key._row_id, lock=True)] if key is not None else list(reads)
    with db.write() as txn:
        rows = txn.get_many(*gets)
        if key is None:
            return create(txn, rows)
        stored = rows.pop()  # read once, held to the end
        prior = key._replay(stored)
        if prior is not None:
            return prior
        made = create(txn, rows)
        key.remember(txn, made, stored=stored)
        return made
