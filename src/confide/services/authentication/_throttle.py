"""Throttling of failed logins, per user id and per source address (issue 10, item 3).

Each scope (user ids, addresses) keeps a bounded table of recent failures.
A key may fail ``free_failures`` times; the failure that reaches that count
locks it for ``backoff_base_s``, and each further failure doubles the lock,
up to ``max_lockout_s``. While locked, attempts are refused *before* the
password is checked (no guess is tried, nothing is counted, the lock is not
extended). Once the lock ends, the next attempt is checked; a success clears
the user id's failures (not the address's: an attacker's own good login must
not reset the count of its guesses at other accounts). Failures are forgotten
``forget_after_s`` after the last one.

Attempts being checked count as pending failures: at most
``free_failures - failures`` (at least one) may be in flight for a key, so a
burst of parallel guesses gets no more tries than a sequence of them.

Memory is bounded: each table holds at most ``max_entries`` keys and evicts
the least recently touched. Pure: the clock is injected.

This state is per process. Given a ``shared`` store (``_shared_failures``: the
database, seen by every replica) the throttle also refuses a key that the store
says is locked or has its pending attempts full, holds a place among the
store's pending attempts while the password is checked (so the pending rule
holds across replicas, not per process), and records each failure (and a user
id's success) there.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from ...config import Limits

__all__ = ["Attempt", "LoginThrottle", "Policy", "Remote", "Reservation", "Scope", "Shared",
           "Throttled", "address_key", "may_start"]


class Scope(StrEnum):
    USER = "user id"
    ADDRESS = "address"


class Throttled(Exception):
    """Too many failed logins for a user id or from an address: retry later."""

    def __init__(self, scope: Scope, retry_after_s: int, failures: int) -> None:
        super().__init__(f"too many failed logins for this {scope}, "
                         f"retry after {retry_after_s} s")
        self.scope = scope
        self.retry_after_s = retry_after_s
        self.failures = failures


@dataclass(frozen=True)
class Policy:
    free_failures: int
    backoff_base_s: float
    max_lockout_s: float
    forget_after_s: float
    max_entries: int

    @classmethod
    def of(cls, limits: Limits, free_failures: int) -> Policy:
        return cls(free_failures=free_failures, backoff_base_s=limits.login_backoff_base_s,
                   max_lockout_s=limits.login_max_lockout_s,
                   forget_after_s=limits.login_forget_after_s,
                   max_entries=limits.login_throttle_max_entries)

    def lockout_s(self, failures: int) -> float:
        """How long a key is locked after its ``failures``-th failure."""
        if failures < self.free_failures:
            return 0.0
        doublings = min(failures - self.free_failures, 64)  # 2**64 s is past any cap
        return min(self.backoff_base_s * 2.0 ** doublings, self.max_lockout_s)


@dataclass(frozen=True)
class Remote:
    """What the shared store knows of a key: its failures, how long it stays locked
    and how many attempts (of any replica) are being checked."""

    failures: int
    locked_for_s: float
    pending: int = 0


@dataclass(frozen=True)
class Reservation:
    """What :meth:`Shared.begin` found, and the place it took for the attempt."""

    user: Remote | None
    address: Remote | None
    #: The attempt's place among both keys' pending attempts in the store; None
    #: when none was taken (the store refused, or could be read but not written:
    #: then only this process counts the attempt as pending).
    ticket: str | None


class Shared(Protocol):
    """Failures kept outside the process (``_shared_failures.SharedFailures``)."""

    def begin(self, user: bytes, address: bytes) -> Reservation:
        """Both keys' stored state; a place among their pending attempts unless
        either is locked or has as many pending attempts as :func:`may_start`
        allows. Raises when the store cannot be read."""
        ...

    def end(self, user: bytes, address: bytes, ticket: str | None, *, failed: bool | None,
            clear_user: bool) -> None:
        """Give the place back; count a failure (``failed``) or clear the user
        id's failures (``clear_user``, after a success)."""
        ...


def may_start(policy: Policy, failures: int, pending: int) -> bool:
    """The pending rule: another attempt may be checked while fewer than the free
    failures left (at least one) are in flight, so parallel guesses get no more
    tries than sequential ones."""
    return pending < max(policy.free_failures - failures, 1)


@dataclass
class _Entry:
    failures: int = 0
    last_failure: float = 0.0
    locked_until: float = 0.0
    in_flight: int = 0


class _Table:
    """Failures of one scope. Not thread-safe: :class:`LoginThrottle` locks."""

    def __init__(self, scope: Scope, policy: Policy) -> None:
        self.scope = scope
        self._policy = policy
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def _entry(self, key: bytes, now: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and entry.in_flight == 0 and entry.failures and \
                now - entry.last_failure >= self._policy.forget_after_s:
            del self._entries[key]
            return None
        return entry

    def refusal(self, key: bytes, now: float, remote: Remote | None = None) -> Throttled | None:
        """Why an attempt for ``key`` may not start now, or None (``remote``: what
        the shared store says of it)."""
        entry = self._entry(key, now)
        if entry is not None and now < entry.locked_until:
            return Throttled(self.scope, math.ceil(entry.locked_until - now), entry.failures)
        if remote is not None and remote.locked_for_s > 0:
            return Throttled(self.scope, math.ceil(remote.locked_for_s), remote.failures)
        failures = max(entry.failures if entry is not None else 0,
                       remote.failures if remote is not None else 0)
        # This process's attempts are among the store's pending ones when it took
        # places for them, so the larger count is the whole.
        pending = max(entry.in_flight if entry is not None else 0,
                      remote.pending if remote is not None else 0)
        if not may_start(self._policy, failures, pending):
            # Other attempts for this key are being checked and could be the
            # last free failures: wait for their outcome.
            return Throttled(self.scope, math.ceil(self._policy.backoff_base_s), failures)
        return None

    def begin(self, key: bytes, now: float) -> None:
        entry = self._entry(key, now)
        if entry is None:
            entry = self._entries[key] = _Entry()
            while len(self._entries) > self._policy.max_entries:
                self._entries.popitem(last=False)  # the least recently touched
        self._entries.move_to_end(key)
        entry.in_flight += 1

    def end(self, key: bytes, now: float, *, failed: bool, reset: bool) -> None:
        entry = self._entries.get(key)
        if entry is None:  # evicted meanwhile
            if not failed:
                return
            self.begin(key, now)
            entry = self._entries[key]
        entry.in_flight = max(entry.in_flight - 1, 0)
        if failed:
            entry.failures += 1
            entry.last_failure = now
            entry.locked_until = now + self._policy.lockout_s(entry.failures)
        elif reset:
            entry.failures, entry.locked_until = 0, 0.0
        if entry.failures == 0 and entry.in_flight == 0:
            del self._entries[key]


def address_key(ip: bytes) -> bytes:
    """The address a failure counts against: IPv4 whole, IPv6 by its /64.

    ``ip`` is the 16-byte form of the audit log (IPv4 as ``::a.b.c.d``). One
    IPv6 host usually holds a whole /64, so counting per /128 would not count.
    """
    if len(ip) != 16 or ip[:12] == bytes(12):
        return bytes(ip)
    return ip[:8] + bytes(8)


class Attempt:
    """One admitted login attempt, used as a context manager: call
    :meth:`failed` or :meth:`succeeded` inside it. Left without either (an
    error before the password was judged), it counts as neither."""

    def __init__(self, throttle: LoginThrottle, user: bytes, address: bytes, *,
                 ticket: str | None = None) -> None:
        self._throttle = throttle
        self._user = user
        self._address = address
        self._ticket = ticket
        self._done = False

    def __enter__(self) -> Attempt:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._finish(None)

    def failed(self) -> None:
        self._finish(True)

    def succeeded(self) -> None:
        self._finish(False)

    def _finish(self, failed: bool | None) -> None:
        if not self._done:
            self._done = True
            self._throttle._end(self._user, self._address, self._ticket, failed=failed)


class LoginThrottle:
    """Admits login attempts, or refuses them with :class:`Throttled`.

    ``clock`` returns seconds (``time.monotonic`` in the server); ``shared``
    keeps the failures where every replica sees them (None: this process only).
    """

    def __init__(self, limits: Limits, clock: Callable[[], float], *,
                 shared: Shared | None = None) -> None:
        if min(limits.login_user_free_failures, limits.login_address_free_failures,
               limits.login_throttle_max_entries) < 1 or limits.login_backoff_base_s <= 0:
            raise ValueError("login throttle: free failures, entries and backoff must be > 0")
        if limits.login_forget_after_s < limits.login_max_lockout_s:
            raise ValueError("login throttle: failures must be kept at least as long as "
                             "the longest lockout")
        self._clock = clock
        self._shared = shared
        self._lock = threading.Lock()
        self._users = _Table(Scope.USER, Policy.of(limits, limits.login_user_free_failures))
        self._addresses = _Table(Scope.ADDRESS,
                                 Policy.of(limits, limits.login_address_free_failures))

    def admit(self, user: bytes, address: bytes) -> Attempt:
        """Start an attempt for ``user`` (a key such as ``name_key``) from ``address``.

        Raises:
            Throttled: the user id or the address is locked, or has as many attempts
                being checked as the pending rule allows (the longer wait wins).
            Exception: whatever ``shared.begin`` raises (it cannot be read: refuse).
        """
        held = None if self._shared is None else self._shared.begin(user, address)
        remote_user, remote_address = (None, None) if held is None else (held.user, held.address)
        try:
            with self._lock:
                now = self._clock()
                refusals = [r for r in (self._users.refusal(user, now, remote_user),
                                        self._addresses.refusal(address, now, remote_address))
                            if r is not None]
                if refusals:
                    raise max(refusals, key=lambda r: r.retry_after_s)
                self._users.begin(user, now)
                self._addresses.begin(address, now)
        except Throttled:
            if held is not None and held.ticket is not None:  # this process knew better
                self._shared_end(user, address, held.ticket, failed=None)
            raise
        return Attempt(self, user, address, ticket=None if held is None else held.ticket)

    def _end(self, user: bytes, address: bytes, ticket: str | None, *,
             failed: bool | None) -> None:
        """``failed`` None: the attempt was abandoned before a verdict; a success
        clears the user id's failures (here and in the store)."""
        with self._lock:
            now = self._clock()
            self._users.end(user, now, failed=bool(failed), reset=failed is False)
            self._addresses.end(address, now, failed=bool(failed), reset=False)
        self._shared_end(user, address, ticket, failed=failed)

    def _shared_end(self, user: bytes, address: bytes, ticket: str | None, *,
                    failed: bool | None) -> None:
        if self._shared is not None and (ticket is not None or failed is not None):
            self._shared.end(user, address, ticket, failed=failed, clear_user=failed is False)

    def sizes(self) -> tuple[int, int]:
        """(user ids, addresses) currently tracked."""
        with self._lock:
            return len(self._users), len(self._addresses)
