"""Failed logins kept in the database, so every authentication replica sees them (issue 12).

:class:`~._throttle.LoginThrottle` counts failures in its process; with a
:class:`SharedFailures` it also reads and writes them in the ``login_failures``
table, so N replicas on one database give an attacker the budget of one, and a
restart forgets nothing. One row per user id or address:

* its id is ``HMAC-SHA256(key, scope || key)`` with a key derived from the
  platform secret: the database (untrusted) never learns a user id or an
  address, and cannot tell which row is whose;
* its body (sealed like every row) holds the count, the last failure and the
  end of the lock, in Unix seconds of the writing replica's clock (replicas need
  synchronised clocks: a skew of s seconds moves a lock's end by s);
* ``expires_at`` (when the failures are forgotten) lets one statement purge
  expired rows and keep at most ``login_throttle_max_entries`` per scope, the
  least recently failed dropped first.

Costs: a login reads both rows in one round trip (``Txn.get_many``); a
failure is one write transaction (two round trips: the locked
read, then the writes, the purge and the commit together); a success writes
only when the user id had failures. A read that fails raises
:class:`ThrottleUnavailable` (the login is refused, fail closed); a failure that
cannot be written still counts in the process (``LoginThrottle``), as before.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from ...config import Limits
from ...storage import Conflict, Database, Get, Row, StorageError, StorageUnavailable, Txn
from ._throttle import Policy, Remote, Scope

__all__ = ["SharedFailures", "ThrottleUnavailable"]

_log = logging.getLogger(__name__)
_TABLE = "login_failures"
_SCOPES = {Scope.USER: 0, Scope.ADDRESS: 1}
_ATTEMPTS = 3  # a write that lost a race (a concurrent first failure) is tried again


class ThrottleUnavailable(Exception):
    """The shared failure counts cannot be read: no login may be checked now."""


@dataclass(frozen=True)
class _Key:
    scope: Scope
    row_id: str


class SharedFailures:
    """The ``login_failures`` table. ``clock`` returns Unix seconds (``time.time``)."""

    def __init__(self, db: Database, key: bytes, limits: Limits,
                 clock: Callable[[], float]) -> None:
        if len(key) < 32:
            raise ValueError("login throttle: the row key must have at least 32 bytes")
        self._db = db
        self._key = key
        self._clock = clock
        self._max_entries = limits.login_throttle_max_entries
        self._forget_after_s = limits.login_forget_after_s
        self._policies = {
            Scope.USER: Policy.of(limits, limits.login_user_free_failures),
            Scope.ADDRESS: Policy.of(limits, limits.login_address_free_failures),
        }

    def _row_key(self, scope: Scope, key: bytes) -> _Key:
        mac = hmac.new(self._key, bytes([_SCOPES[scope]]) + key, hashlib.sha256)
        return _Key(scope, mac.hexdigest())

    def _remote(self, row: Row | None, now: float) -> Remote | None:
        """What ``row`` says now; None when absent or forgotten."""
        if row is None or int(row.columns["expires_at"]) <= now:
            return None
        failures = int(row.body["failures"])
        return Remote(failures, max(float(row.body["locked_until"]) - now, 0.0))

    def read(self, user: bytes, address: bytes) -> tuple[Remote | None, Remote | None]:
        """The shared state of ``user`` and ``address`` (one round trip).

        Raises:
            ThrottleUnavailable: the database failed (or a row was tampered with).
        """
        keys = (self._row_key(Scope.USER, user), self._row_key(Scope.ADDRESS, address))
        try:
            with self._db.read() as txn:
                rows = txn.get_many(*(Get(_TABLE, k.row_id) for k in keys))
        except StorageError as e:
            raise ThrottleUnavailable(f"cannot read the failed-login counts: {e}") from e
        now = self._clock()
        return self._remote(rows[0], now), self._remote(rows[1], now)

    def record_failure(self, user: bytes, address: bytes) -> None:
        """Count one failure against both keys; logged, not raised, when the database fails."""
        keys = [self._row_key(Scope.USER, user), self._row_key(Scope.ADDRESS, address)]
        for attempt in range(_ATTEMPTS):
            try:
                with self._db.write() as txn:
                    self._count(txn, keys)
                return
            except (Conflict, StorageUnavailable) as e:
                # Conflict: another replica inserted a first failure meanwhile;
                # unavailable: also a lock timeout or a deadlock between purges.
                if attempt + 1 == _ATTEMPTS:
                    _log.error("cannot record a failed login in the database: %s", e)
            except StorageError as e:
                _log.error("cannot record a failed login in the database: %s", e)
                return

    def _count(self, txn: Txn, keys: list[_Key]) -> None:
        rows = txn.get_many(*(Get(_TABLE, k.row_id, lock=True) for k in keys))
        now = self._clock()
        for key, row in zip(keys, rows, strict=True):
            before = self._remote(row, now)
            failures = 1 if before is None else before.failures + 1
            body = {"failures": failures, "last_failure": now,
                    "locked_until": now + self._policies[key.scope].lockout_s(failures)}
            cols: dict[str, int] = {"scope": _SCOPES[key.scope],
                                    "expires_at": math.ceil(now + self._forget_after_s)}
            if row is None:
                txn.insert(_TABLE, key.row_id, body, **cols)
                txn.delete_beyond(_TABLE, "expires_at", self._max_entries,
                                  where={"scope": _SCOPES[key.scope]})
            else:  # present (perhaps forgotten already: then counted afresh)
                txn.update(_TABLE, key.row_id, body, **cols)
        txn.delete_below(_TABLE, "expires_at", math.floor(now) + 1)  # the forgotten ones

    def clear_user(self, user: bytes) -> None:
        """Forget the failures of ``user`` (after its successful login)."""
        try:
            with self._db.write() as txn:
                txn.delete(_TABLE, self._row_key(Scope.USER, user).row_id)
        except StorageError as e:
            _log.error("cannot clear the failed logins of a user in the database: %s", e)

    def size(self) -> int:
        """Rows in the table (unauthenticated count: for tests and metrics)."""
        with self._db.read() as txn:
            return sum(txn.count_by(_TABLE, "scope").values())
