"""Scheduler nodes sharing a database agree on the lease clock and length (issue 12).

A lease carries its own deadline: the granting node's wall clock plus its
executor timeout (``_scheduler``), and every node's reaper compares it with its
own clock. So on PostgreSQL, where several nodes share the queue:

* **clock**: a node compares its clock with the database server's
  (``clock_timestamp()``) at start and at every health round. The offset, less
  half the round trip (the measurement's uncertainty), must stay within
  ``Limits.max_clock_skew_s``; two nodes within it of the database are within
  twice it of each other. Beyond it the node does not start, or its scheduler
  turns NOT_SERVING until the clocks agree again.
* **executor timeout**: each node keeps an entry in the ``meta`` row
  ``scheduler-nodes`` (its generation, timeout and when it was last there, by
  the database's clock), refreshed every health round and removed when it
  stops. A node whose timeout differs from a live node's does not start (the
  message names both); a live node that sees such an entry (two nodes starting
  together, or one that started while this one could not reach the database)
  turns NOT_SERVING. An entry not refreshed for ``horizon_s`` is a node that is
  gone. The row is unauthenticated: a database that forges it can only refuse
  starts, which a database can do anyway.

SQLite (one host, one clock) needs neither. Pure apart from the database: the
clocks are injected.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import cbor2

from ...storage import Database, StorageError

__all__ = ["AgreementError", "SchedulerAgreement", "Skew", "measure_skew"]

_log = logging.getLogger(__name__)
_META_KEY = "scheduler-nodes"
_MAX_NODES = 256  # entries kept in the row (the most recently seen)
_SWAP_ATTEMPTS = 5


class AgreementError(Exception):
    """This scheduler node disagrees with the database or another node: it must not start."""


@dataclass(frozen=True)
class Skew:
    """The database's clock minus this node's, measured over one round trip."""

    offset_s: float
    round_trip_s: float

    def beyond(self, bound_s: float) -> bool:
        """Whether the offset is certainly larger than ``bound_s``."""
        return abs(self.offset_s) - self.round_trip_s / 2 > bound_s


def measure_skew(server_time: Callable[[], float | None],
                 clock: Callable[[], float]) -> Skew | None:
    """The skew against ``server_time`` (None: the database has no clock of its own)."""
    before = clock()
    theirs = server_time()
    after = clock()
    if theirs is None:
        return None
    return Skew(theirs - (before + after) / 2, max(after - before, 0.0))


class SchedulerAgreement:
    """One scheduler node's checks. ``clock`` returns Unix seconds (``time.time``)."""

    def __init__(self, db: Database, *, generation: str, executor_timeout_s: float,
                 max_skew_s: float, horizon_s: float, clock: Callable[[], float],
                 server_time: Callable[[], float | None] | None = None) -> None:
        if max_skew_s <= 0 or horizon_s <= 0:
            raise ValueError("scheduler agreement: the clock skew bound and the horizon "
                             "must be > 0")
        self._db = db
        self._generation = generation
        self._timeout = float(executor_timeout_s)
        self._max_skew = max_skew_s
        self._horizon = horizon_s
        self._clock = clock
        self._server_time = server_time or db.server_time
        self._problem: str | None = None

    # -- the clock ---------------------------------------------------------
    def _skew_problem(self) -> tuple[str | None, float]:
        """(what is wrong with this node's clock or None, the database's time now)."""
        skew = measure_skew(self._server_time, self._clock)
        if skew is None:
            return None, self._clock()
        now = self._clock() + skew.offset_s
        if skew.beyond(self._max_skew):
            return (f"this node's clock is {abs(skew.offset_s):.3f} s "
                    f"{'behind' if skew.offset_s > 0 else 'ahead of'} the database's "
                    f"(measured over a {skew.round_trip_s * 1000:.0f} ms round trip), more "
                    f"than the {self._max_skew:g} s allowed (max_clock_skew_s): leases would "
                    "end at different times on different scheduler nodes; synchronise the "
                    "clocks (NTP)"), now
        return None, now

    # -- the executor timeout ----------------------------------------------
    def _register(self, now: float, *, join: bool) -> str | None:
        """Put this node's entry in the row (unless ``join`` and another live node
        disagrees); what disagrees, or None."""
        for _ in range(_SWAP_ATTEMPTS):
            raw = self._db.read_meta(_META_KEY)
            nodes = _decode(raw)
            live = {g: e for g, e in nodes.items() if now - e[1] < self._horizon}
            others = {g: e for g, e in live.items() if g != self._generation}
            differing = sorted({e[0] for e in others.values() if e[0] != self._timeout})
            problem = None
            if differing:
                seen = max(e[1] for e in others.values() if e[0] == differing[0])
                problem = (f"another scheduler node on this database uses --executor-timeout "
                           f"{differing[0]:g} s, this one {self._timeout:g} s: every scheduler "
                           "node needs the same (a lease's length is the granting node's); "
                           f"that node was last seen {max(now - seen, 0.0):.0f} s ago (a node "
                           f"not seen for {self._horizon:g} s counts as gone)")
                if join:
                    return problem
            live[self._generation] = (self._timeout, now)
            kept = dict(sorted(live.items(), key=lambda item: -item[1][1])[:_MAX_NODES])
            if self._db.swap_meta(_META_KEY, raw, _encode(kept)):
                return problem
        return None  # others kept writing: the next round tries again

    def _round(self, *, join: bool) -> str | None:
        problem, now = self._skew_problem()
        if problem is not None and join:
            return problem
        # A node already serving keeps its entry fresh whatever its clock says.
        return problem or self._register(now, join=join)

    # -- API ---------------------------------------------------------------
    def check_start(self) -> None:
        """Before the node serves.

        Raises:
            AgreementError: the clock is off or another live node's timeout differs.
            StorageError: the database failed.
        """
        problem = self._round(join=True)
        if problem is not None:
            raise AgreementError(problem)

    def check(self) -> bool:
        """One health round: False while this node disagrees. A database failure
        keeps the last answer (the database check reports the outage)."""
        try:
            problem = self._round(join=False)
        except StorageError:
            return self._problem is None
        if problem != self._problem:
            if problem is not None:
                _log.error("scheduler not serving: %s", problem)
            else:
                _log.info("scheduler agreement restored (clock and executor timeout)")
            self._problem = problem
        return problem is None

    def leave(self) -> None:
        """Remove this node's entry (it stops)."""
        try:
            for _ in range(_SWAP_ATTEMPTS):
                raw = self._db.read_meta(_META_KEY)
                nodes = _decode(raw)
                if self._generation not in nodes:
                    return
                del nodes[self._generation]
                if self._db.swap_meta(_META_KEY, raw, _encode(nodes)):
                    return
        except StorageError as e:
            _log.warning("cannot remove this scheduler node's entry: %s", e)


def _decode(raw: bytes | None) -> dict[str, tuple[float, float]]:
    """The row's entries; a malformed row (the database is untrusted) counts as empty."""
    if raw is None:
        return {}
    try:
        value = cbor2.loads(raw)
    except (cbor2.CBORDecodeError, ValueError, TypeError):
        return {}
    if not isinstance(value, dict):
        return {}
    nodes = {}
    for generation, entry in list(value.items())[:_MAX_NODES]:
        if isinstance(generation, str) and isinstance(entry, list) and len(entry) == 2 and \
                all(isinstance(x, int | float) and math.isfinite(x) for x in entry):
            nodes[generation] = (float(entry[0]), float(entry[1]))
    return nodes


def _encode(nodes: dict[str, tuple[float, float]]) -> bytes:
    return cbor2.dumps({g: [t, seen] for g, (t, seen) in nodes.items()})
