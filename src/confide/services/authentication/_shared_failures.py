"""Failed logins kept in the database, so every authentication replica sees them (issue 12).

:class:`~._throttle.LoginThrottle` counts failures in its process; with a
:class:`SharedFailures` it also reads and writes them in the ``login_failures``
table, so N replicas on one database give an attacker the budget of one, and a
restart forgets nothing. One row per user id or address:

* its id is ``HMAC-SHA256(key, scope || key)`` with a key derived from the
  platform secret: the database (untrusted) never learns a user id or an
  address, and cannot tell which row is whose;
* its body (sealed like every row) holds the count, the last failure, the end
  of the lock and the attempts being checked (a random ticket and a deadline
  each), in Unix seconds of the writing replica's clock (replicas need
  synchronised clocks: a skew of s seconds moves a lock's end by s);
* ``expires_at`` (when the failures are forgotten and every ticket has lapsed)
  lets one statement purge expired rows and keep at most
  ``login_throttle_max_entries`` per scope, the least recently written dropped
  first.

A login takes a place among both keys' pending attempts in one write
transaction (:meth:`SharedFailures.begin`: the locked read, then the writes and
the commit; refused, without a write, when either key is locked or its places
are taken, ``_throttle.may_start``), so the pending rule holds across replicas:
k replicas give parallel guesses no more tries than one. The verdict gives the
place back in another (:meth:`SharedFailures.end`), counting a failure or
clearing the user id's count there. A place whose replica died mid-check
lapses after :data:`PENDING_S`.

Failing closed: when the rows cannot be read, :class:`ThrottleUnavailable`
(the login is refused unchecked). When they can be read but not written (say
the disk is full), the login goes on with the pending rule of this process
alone and a failure still counts in the process (``LoginThrottle``).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from ...config import Limits
from ...storage import Conflict, Database, Get, Row, StorageError, StorageUnavailable, Txn
from .._outage import storage_failure
from ._throttle import Policy, Remote, Reservation, Scope, may_start

__all__ = ["SharedFailures", "ThrottleUnavailable"]

T = TypeVar("T")
_TABLE = "login_failures"
_SCOPES = {Scope.USER: 0, Scope.ADDRESS: 1}
_ATTEMPTS = 3  # a write that lost a race (a concurrent first failure) is tried again
#: How long a login being checked holds its place at most (its replica may die
#: mid-check): far above an argon2 check, short enough not to lock a user out.
PENDING_S = 60.0


class ThrottleUnavailable(Exception):
    """The shared failure counts cannot be read: no login may be checked now."""


@dataclass(frozen=True)
class _Key:
    scope: Scope
    row_id: str


@dataclass
class _State:
    """One key's row as it counts now."""

    failures: int = 0
    last_failure: float = 0.0
    locked_until: float = 0.0
    pending: list[list[Any]] = field(default_factory=list)  # [ticket, deadline] each

    def remote(self, now: float) -> Remote | None:
        if not self.failures and not self.pending:
            return None
        return Remote(self.failures, max(self.locked_until - now, 0.0), len(self.pending))


def _live(body: dict[str, Any], now: float) -> list[list[Any]]:
    """The places of ``body`` whose deadline has not passed (rows written before
    places existed have none)."""
    return [[str(t), float(d)] for t, d in body.get("pending", ()) if float(d) > now]


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

    def _state(self, row: Row | None, now: float) -> _State:
        """What ``row`` says now (failures forgotten, tickets lapsed: dropped)."""
        if row is None or int(row.columns["expires_at"]) <= now:
            return _State()
        body = row.body
        if now >= float(body.get("forget_at", row.columns["expires_at"])):
            return _State(pending=_live(body, now))
        return _State(int(body["failures"]), float(body["last_failure"]),
                      float(body["locked_until"]), _live(body, now))

    def read(self, user: bytes, address: bytes) -> tuple[Remote | None, Remote | None]:
        """The shared state of ``user`` and ``address`` (one round trip; None: nothing
        stored). For inspection: a login uses :meth:`begin`.

        Raises:
            ThrottleUnavailable: the database failed (or a row was tampered with).
        """
        keys = self._keys(user, address)
        try:
            with self._db.read() as txn:
                rows = txn.get_many(*(Get(_TABLE, k.row_id) for k in keys))
        except StorageError as e:
            raise ThrottleUnavailable(f"cannot read the failed-login counts: {e}") from e
        now = self._clock()
        user_state, address_state = (self._state(row, now) for row in rows)
        return user_state.remote(now), address_state.remote(now)

    def begin(self, user: bytes, address: bytes) -> Reservation:
        """Take a place among the pending attempts of ``user`` and ``address``, unless
        either is locked or has its places taken (then nothing is written).

        Raises:
            ThrottleUnavailable: the rows cannot be read (the login is refused).
        """
        ticket = secrets.token_hex(8)

        def take(txn: Txn, keys: tuple[_Key, _Key], rows: list[Row | None],
                 now: float) -> Reservation:
            states = [self._state(row, now) for row in rows]
            # as found: the caller's pending rule counts this attempt itself
            found = Reservation(states[0].remote(now), states[1].remote(now), None)
            if not all(s.locked_until <= now and may_start(
                    self._policies[k.scope], s.failures, len(s.pending))
                       for k, s in zip(keys, states, strict=True)):
                return found  # locked, or its places are taken: nothing written
            for key, row, state in zip(keys, rows, states, strict=True):
                state.pending.append([ticket, now + PENDING_S])
                self._write(txn, key, row, state, now)
            return replace(found, ticket=ticket)

        try:
            return self._locked(user, address, take)
        except StorageError as e:  # no place could be written: the state as read
            remote_user, remote_address = self.read(user, address)  # or ThrottleUnavailable
            storage_failure(e, "the login throttle (a pending login counted by this "
                               "replica alone)")  # logged at a bounded rate
            return Reservation(remote_user, remote_address, None)

    def end(self, user: bytes, address: bytes, ticket: str | None, *, failed: bool | None,
            clear_user: bool) -> None:
        """Give ``ticket``'s place back; with ``failed`` count a failure against both
        keys, with ``clear_user`` forget the user id's failures. Logged, not raised,
        when the database fails (the place lapses after :data:`PENDING_S`)."""
        def give_back(txn: Txn, keys: tuple[_Key, _Key], rows: list[Row | None],
                      now: float) -> None:
            for key, row in zip(keys, rows, strict=True):
                state = self._state(row, now)
                state.pending = [p for p in state.pending if p[0] != ticket]
                if failed:
                    state.failures += 1
                    state.last_failure = now
                    state.locked_until = now + self._policies[key.scope].lockout_s(
                        state.failures)
                elif clear_user and key.scope is Scope.USER:
                    state.failures, state.locked_until = 0, 0.0
                self._write(txn, key, row, state, now)
            txn.delete_below(_TABLE, "expires_at", math.floor(now) + 1)  # forgotten

        try:
            self._locked(user, address, give_back)
        except StorageError as e:
            storage_failure(e, "the login throttle (the end of a login)")

    def _keys(self, user: bytes, address: bytes) -> tuple[_Key, _Key]:
        return self._row_key(Scope.USER, user), self._row_key(Scope.ADDRESS, address)

    def _locked(self, user: bytes, address: bytes,
                change: Callable[[Txn, tuple[_Key, _Key], list[Row | None], float], T]) -> T:
        """``change(txn, keys, rows, now)`` in a write transaction, on both keys' rows
        read locked; tried again when it lost a race (Conflict: another replica
        inserted a row meanwhile; unavailable: also a lock timeout or a deadlock
        between purges). Raises the last StorageError."""
        keys = self._keys(user, address)
        for attempt in range(_ATTEMPTS):
            try:
                with self._db.write() as txn:
                    rows = txn.get_many(*(Get(_TABLE, k.row_id, lock=True) for k in keys))
                    return change(txn, keys, rows, self._clock())
            except (Conflict, StorageUnavailable):
                if attempt + 1 == _ATTEMPTS:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _write(self, txn: Txn, key: _Key, row: Row | None, state: _State, now: float) -> None:
        """Store ``state`` as ``key``'s row (deleted when it holds nothing any more)."""
        forget_at = state.last_failure + self._forget_after_s if state.failures else 0.0
        expires = max([forget_at, *(p[1] for p in state.pending)])
        if expires <= now:
            if row is not None:
                txn.delete(_TABLE, key.row_id)
            return
        body: dict[str, Any] = {"failures": state.failures, "last_failure": state.last_failure,
                                "locked_until": state.locked_until, "forget_at": forget_at,
                                "pending": state.pending}
        cols = {"scope": _SCOPES[key.scope], "expires_at": math.ceil(expires)}
        if row is None:
            txn.insert(_TABLE, key.row_id, body, **cols)
            txn.delete_beyond(_TABLE, "expires_at", self._max_entries,
                              where={"scope": _SCOPES[key.scope]})
        else:  # present (perhaps forgotten already: then counted afresh)
            txn.update(_TABLE, key.row_id, body, **cols)

    def size(self) -> int:
        """Rows in the table (unauthenticated count: for tests and metrics)."""
        with self._db.read() as txn:
            return sum(txn.count_by(_TABLE, "scope").values())
