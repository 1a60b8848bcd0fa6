"""In-process wake-ups, so nobody polls on the hot path.

``task_ended`` wakes whoever waits on that task (WaitTask callers, the
heartbeat of the executor running it). Both wait for the task to *end*
(finish, fail, be canceled), so only those changes are announced.
``work_available`` wakes one idle executor's long-poll. Waiters always
re-check the database after waking and wake up by themselves after their
timeout, so a lost notification (another process changed the row) costs
latency, never correctness.
"""

from __future__ import annotations

import threading
from collections import defaultdict

__all__ = ["Notifier"]


class Notifier:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._task_waiters: defaultdict[str, set[threading.Event]] = defaultdict(set)
        self._work = threading.Condition()
        self._work_seq = 0

    # -- per-task ----------------------------------------------------------
    def watch(self, task_id: str) -> threading.Event:
        """Register interest *before* checking the task's state, then wait."""
        event = threading.Event()
        with self._lock:
            self._task_waiters[task_id].add(event)
        return event

    def unwatch(self, task_id: str, event: threading.Event) -> None:
        with self._lock:
            waiters = self._task_waiters.get(task_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._task_waiters[task_id]

    def task_ended(self, task_id: str) -> None:
        """Announce that ``task_id`` reached a final state."""
        with self._lock:
            waiters = list(self._task_waiters.get(task_id, ()))
        for event in waiters:
            event.set()

    # -- queue -------------------------------------------------------------
    def work_seq(self) -> int:
        with self._work:
            return self._work_seq

    def work_available(self, count: int = 1) -> None:
        with self._work:
            self._work_seq += 1
            self._work.notify(count)

    def wait_for_work(self, seen_seq: int, timeout: float) -> None:
        """Return when work was announced after ``seen_seq`` or ``timeout`` passed."""
        with self._work:
            if self._work_seq == seen_seq:
                self._work.wait(timeout)
