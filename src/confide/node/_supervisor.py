"""Keeps N execution worker processes alive (spec Q23 fix: workers are supervised).

A worker that exits unexpectedly is reported to the scheduler at once, so its
task fails with a reason instead of waiting for the heartbeat timeout, its
private staging area (decrypted inputs) is removed, and a new worker (with a
new executor id) takes its place, unless the server is shutting down
(:meth:`Supervisor.drain`). Workers exit by themselves when the
supervising process dies (``execution._worker``), and their executor ids carry
this server's generation, so a worker left over by a killed server is refused.

With ``metrics_dir``, each worker records its ``confide_worker_*`` metrics in
files there (``confide.telemetry``), and a dead worker's live gauges are dropped.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from ..execution._staging import remove_private_area, sweep_private_areas
from ..execution._worker import WorkerConfig
from ..telemetry import worker_environment, worker_exited
from ..telemetry._metrics import SUPERVISOR_WORKER_EXITS, SUPERVISOR_WORKER_PROCESSES

__all__ = ["Supervisor"]

_log = logging.getLogger(__name__)
_QUICK_DEATH_S = 10.0  # a worker that dies sooner (e.g. enrolment refused) is respawned
_MAX_BACKOFF_S = 30.0  # after an exponentially growing pause, up to this long


class Supervisor:
    def __init__(self, count: int, make_config: Callable[[str], WorkerConfig],
                 on_lost: Callable[[str, str], None], *, metrics_dir: Path | None = None,
                 id_prefix: str = "executor-") -> None:
        """``id_prefix``: put before each executor's uuid: ``executor-<generation>-`` for
        ``confide serve``'s workers (Scheduler.admit refuses other generations),
        ``<name>/executor-`` for ``confide worker --name`` (revoking the name revokes
        its every worker)."""
        self._count = count
        self._id_prefix = id_prefix
        self.metrics_dir = metrics_dir
        self._make_config = make_config
        self._on_lost = on_lost
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._started: dict[str, float] = {}
        self._backoff = 0.0
        self._respawn_at: list[float] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._draining = threading.Event()  # the server is stopping: no more respawns
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)

    def start(self) -> None:
        swept = sweep_private_areas()
        if swept:
            _log.warning("removed the staging areas of %d dead workers: %s", len(swept), swept)
        for _ in range(self._count):
            self._spawn()
        self._thread.start()

    def _spawn(self) -> None:
        executor_id = f"{self._id_prefix}{uuid.uuid4()}"
        cfg = self._make_config(executor_id)
        env = None
        if self.metrics_dir is not None:
            env = {**os.environ, **worker_environment(self.metrics_dir)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "confide.execution._worker"], stdin=subprocess.PIPE, env=env,
        )
        assert proc.stdin is not None
        proc.stdin.write(cfg.to_cbor())
        proc.stdin.close()
        with self._lock:
            self._procs[executor_id] = proc
            self._started[executor_id] = time.monotonic()
            SUPERVISOR_WORKER_PROCESSES.set(len(self._procs))
        _log.info("started worker pid %d as %s", proc.pid, executor_id)

    def drain(self) -> None:
        """Replace no dead worker from now on (the server is shutting down)."""
        self._draining.set()

    def pids(self) -> dict[str, int]:
        with self._lock:
            return {k: p.pid for k, p in self._procs.items()}

    def _watch(self) -> None:
        while not self._stopping.wait(0.2):
            with self._lock:
                dead = [(k, p) for k, p in self._procs.items() if p.poll() is not None]
                for k, _p in dead:
                    del self._procs[k]
                SUPERVISOR_WORKER_PROCESSES.set(len(self._procs))
            for executor_id, proc in dead:
                if self._stopping.is_set():
                    return
                reason = ("Runtime Error: Executor Lost "
                          f"(worker exited with status {proc.returncode})")
                _log.error("worker %s died (%s)", executor_id, proc.returncode)
                SUPERVISOR_WORKER_EXITS.inc()
                remove_private_area(proc.pid)
                if self.metrics_dir is not None:
                    worker_exited(self.metrics_dir, proc.pid)
                self._on_lost(executor_id, reason)
                lived = time.monotonic() - self._started.pop(executor_id, 0.0)
                if lived < _QUICK_DEATH_S:
                    self._backoff = min(max(self._backoff * 2, 1.0), _MAX_BACKOFF_S)
                    _log.warning("worker died after %.1f s; respawning in %.0f s", lived,
                                 self._backoff)
                else:
                    self._backoff = 0.0
                self._respawn_at.append(time.monotonic() + self._backoff)
            if self._draining.is_set():
                self._respawn_at.clear()
                continue
            now = time.monotonic()
            due = [t for t in self._respawn_at if t <= now]
            self._respawn_at = [t for t in self._respawn_at if t > now]
            for _ in due:
                self._spawn()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        with self._lock:
            procs = list(self._procs.values())
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            remove_private_area(p.pid)
            if self.metrics_dir is not None:
                worker_exited(self.metrics_dir, p.pid)
        SUPERVISOR_WORKER_PROCESSES.set(0)
