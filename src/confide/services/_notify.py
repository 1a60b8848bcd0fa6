"""In-process wake-ups, so nobody polls on the hot path.

``task_ended`` wakes whoever waits on that task (WaitTask callers, the
heartbeat of the executor running it). Both wait for the task to *end*
(finish, fail, be canceled), so only those changes are announced.
``work_available`` wakes one idle executor's long-poll. Waiters always
re-check the database after waking and wake up by themselves after their
timeout, so a lost notification (another process changed the row) costs
latency, never correctness.

A waiter is a :class:`Waker`: a thread's ``threading.Event`` or, for code on
the RPC event loop, an :class:`AsyncWaker`. Either may be woken from any thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Protocol

__all__ = ["AsyncWaker", "Notifier", "Waker"]


_log = logging.getLogger(__name__)

class Waker(Protocol):
    def set(self) -> None: ...


class AsyncWaker:
    """An ``asyncio.Event`` of the running loop that any thread may set."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()

    def set(self) -> None:
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self._event.set()
        else:
            self._loop.call_soon_threadsafe(self._event.set)

    async def pause(self, timeout: float) -> None:
        """Return once set (and clear it) or after ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            pass
        self._event.clear()


class Notifier:
    """Wakes this process's waiters; with ``publish``, also other processes' (a node
    of the distributed shape passes ``Database.notify``: PostgreSQL NOTIFY on the
    ``work`` and ``task_ended`` channels, whose listeners call back with
    ``local=True``)."""

    def __init__(self, publish: Callable[[str, str], None] | None = None) -> None:
        self._publish = publish
        self._lock = threading.Lock()
        self._task_waiters: defaultdict[str, set[Waker]] = defaultdict(set)
        self._idle: deque[Waker] = deque()  # executors' long-polls waiting for work
        self._work_seq = 0

    # -- per-task ----------------------------------------------------------
    def watch(self, task_id: str, waker: Waker) -> None:
        """Register interest *before* checking the task's state, then wait."""
        with self._lock:
            self._task_waiters[task_id].add(waker)

    def unwatch(self, task_id: str, waker: Waker) -> None:
        with self._lock:
            waiters = self._task_waiters.get(task_id)
            if waiters is not None:
                waiters.discard(waker)
                if not waiters:
                    del self._task_waiters[task_id]

    def task_ended(self, task_id: str, *, local: bool = False) -> None:
        """Announce that ``task_id`` reached a final state."""
        with self._lock:
            waiters = list(self._task_waiters.get(task_id, ()))
        for waker in waiters:
            waker.set()
        if self._publish is not None and not local:
            self._announce("task_ended", task_id)

    # -- queue -------------------------------------------------------------
    def work_seq(self) -> int:
        with self._lock:
            return self._work_seq

    def work_available(self, count: int = 1, *, local: bool = False) -> None:
        """Announce new work; wake up to ``count`` idle long-polls."""
        with self._lock:
            self._work_seq += 1
            woken = [self._idle.popleft() for _ in range(min(count, len(self._idle)))]
        for waker in woken:
            waker.set()
        if self._publish is not None and not local:
            self._announce("work", "")

    def _announce(self, channel: str, payload: str) -> None:
        """Tell other processes; a lost announcement costs them latency only (they
        re-read the database at least every second), so a failure is logged, not raised."""
        assert self._publish is not None
        try:
            self._publish(channel, payload)
        except Exception as e:  # noqa: BLE001 - a hint; the rows are the truth
            _log.warning("could not announce %s to other nodes: %s", channel, e)

    def idle(self, seen_seq: int, waker: Waker) -> bool:
        """Queue ``waker`` for the next announcement, unless work was announced
        after ``seen_seq`` (then return False: look again instead of waiting)."""
        with self._lock:
            if self._work_seq != seen_seq:
                return False
            self._idle.append(waker)
            return True

    def not_idle(self, waker: Waker) -> None:
        """Take ``waker`` off the queue (it timed out or its caller left)."""
        with self._lock:
            try:
                self._idle.remove(waker)
            except ValueError:
                pass
