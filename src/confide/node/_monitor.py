"""The background check behind health and the state gauges (``_readiness`` has the rules).

Every ``interval`` seconds (and once before the servers start) it runs the
three checks, sets each server's health statuses on the RPC loop, and updates
``confide_health_check_ok``, ``confide_tasks``, ``confide_scheduler_queue_depth``,
``confide_scheduler_executors`` and ``confide_attestation_evidence_age_seconds``.
A change of the checks' results is logged once (not every round).

The database query runs in a thread of its own and counts as failed when it
has not answered within ``check_timeout`` (a database host gone silent can
hold a connection attempt for minutes); while it still hangs, later rounds
fail at once instead of piling up queries. A scheduler node's ``agreement``
(its clock and executor timeout against the database and the other nodes)
runs in the same thread after the query, and keeps its last answer while the
database does not answer.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass

from .._status import TaskStatus
from ..api import RpcLoop, ServerHealth
from ..services.scheduler import Scheduler
from ..storage import Database
from ..telemetry._metrics import (
    ATTESTATION_EVIDENCE_AGE,
    HEALTH_CHECK_OK,
    SCHEDULER_EXECUTORS,
    SCHEDULER_QUEUE_DEPTH,
    TASKS,
)
from ._readiness import CHECKS, Checks, ServerReadiness, evidence_age, evidence_fresh

__all__ = ["HealthMonitor"]

_log = logging.getLogger("confide.server.health")
_UPDATE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class _Watched:
    health: ServerHealth
    rule: ServerReadiness


class HealthMonitor:
    """Runs the checks and publishes their results (module docstring).

    Args:
        rpc: the loop the servers run on (health statuses are set there).
        db: the database to check.
        scheduler: knows the live executors.
        certificate: returns the DER of the API certificate being served.
        max_evidence_age: older evidence fails the attestation check.
        interval: seconds between rounds.
        clock: the current time (the API edge).
        check_timeout: seconds the database may take to answer.
        agreement: the scheduler node's agreement check (None: not a scheduler
            node on a shared database: always passes).
        exports_executors: whether this node sets ``confide_scheduler_executors``
            (only a node serving the scheduler role: executors pull from it, so on
            any other node the count is always 0 and would page for nothing).
    """

    def __init__(self, rpc: RpcLoop, db: Database, scheduler: Scheduler, *,
                 certificate: Callable[[], bytes], max_evidence_age: dt.timedelta,
                 interval: float, clock: Callable[[], dt.datetime],
                 check_timeout: float = 5.0,
                 agreement: Callable[[], bool] | None = None,
                 exports_executors: bool = True) -> None:
        self._rpc = rpc
        self._exports_executors = exports_executors
        self._db = db
        self._scheduler = scheduler
        self._certificate = certificate
        self._max_age = max_evidence_age
        self._interval = interval
        self._clock = clock
        self._check_timeout = check_timeout
        self._agreement = agreement
        self._agreed = True
        self._db_pool = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="health-db")
        self._db_pending: futures.Future[tuple[dict[str, dict[object, int]], bool]] | None = \
            None
        self._servers: list[_Watched] = []
        self._last: Checks | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="health", daemon=True)

    def watch(self, health: ServerHealth, rule: ServerReadiness) -> None:
        """Publish the statuses of one more server (before :meth:`start`)."""
        self._servers.append(_Watched(health, rule))

    def start(self) -> None:
        """Everything NOT_SERVING, one round now, then a round every ``interval``."""
        for watched in self._servers:
            self._rpc.run(watched.health.start(), _UPDATE_TIMEOUT_S)
        self.check_once()
        self._thread.start()

    def _loop(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self.check_once()
            except Exception:  # noqa: BLE001 - keep checking; the next round retries
                _log.exception("health check round failed")

    def check_once(self) -> Checks:
        """Run the checks, publish them and return them."""
        database = self._check_database()
        checks = Checks(database=database, attestation=self._check_attestation(),
                        workers=self._check_workers(), agreement=self._agreed)
        for name in CHECKS:
            HEALTH_CHECK_OK.labels(name).set(1 if getattr(checks, name) else 0)
        if checks != self._last:
            healthy = all(getattr(checks, n) for n in CHECKS)
            # The first round at start-up precedes the workers' enrolment: not a warning.
            level = logging.INFO if healthy or self._last is None else logging.WARNING
            _log.log(level, "readiness: %s", ", ".join(
                f"{n} {'ok' if getattr(checks, n) else 'FAILING'}" for n in CHECKS))
            self._last = checks
        if not self._stopping.is_set():
            for watched in self._servers:
                self._rpc.run(watched.health.update(
                    watched.rule.statuses(checks, watched.health.services)), _UPDATE_TIMEOUT_S)
        return checks

    def _counts(self) -> tuple[dict[str, dict[object, int]], bool]:
        with self._db.read() as txn:
            counts = {"tasks": txn.count_by("tasks", "status"),
                      "queue": txn.count_by("queue", "leased_by")}
        return counts, self._agreement() if self._agreement is not None else True

    def _check_database(self) -> bool:
        if self._db_pending is not None and not self._db_pending.done():
            return False  # the last query still hangs
        self._db_pending = self._db_pool.submit(self._counts)
        try:
            counts, self._agreed = self._db_pending.result(self._check_timeout)
        except futures.TimeoutError:
            _log.debug("database check: no answer within %.1f s", self._check_timeout)
            return False
        except Exception as e:  # noqa: BLE001 - any failure means "not reachable"
            _log.debug("database check failed: %s", type(e).__name__)
            return False
        tasks, queue = counts["tasks"], counts["queue"]
        for status in TaskStatus:
            TASKS.labels(status.name.lower()).set(tasks.get(int(status), 0))
        SCHEDULER_QUEUE_DEPTH.set(queue.get("", 0))
        return True

    def _check_attestation(self) -> bool:
        now = self._clock()
        der = self._certificate()
        ATTESTATION_EVIDENCE_AGE.set(max(0.0, evidence_age(der, now).total_seconds()))
        return evidence_fresh(der, now, self._max_age)

    def _check_workers(self) -> bool:
        live = self._scheduler.live_executors()
        if self._exports_executors:
            SCHEDULER_EXECUTORS.set(live)
        return live > 0

    def shutdown(self) -> None:
        """Stop checking; every status NOT_SERVING for good (before the servers stop)."""
        self._stopping.set()
        for watched in self._servers:
            self._rpc.run(watched.health.shutdown(), _UPDATE_TIMEOUT_S)
        if self._thread.is_alive():
            self._thread.join(_UPDATE_TIMEOUT_S)
        self._db_pool.shutdown(wait=False, cancel_futures=True)
