"""Keeps pre-started sandboxes waiting: each runs one job, then is replaced.

One thread per pool starts every sandbox, watches them and replaces the ones
taken or dead. It is the parent of all of them and outlives them: bwrap's
``--die-with-parent`` follows the thread that forked it, so a sandbox started
on a short-lived task thread would die with that thread.

A sandbox leaves the pool once, through :meth:`SandboxPool.take`, and never
comes back: the one-job-per-process property does not depend on the caller.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable

from ._launch import Prestarted

__all__ = ["SandboxPool"]

_log = logging.getLogger(__name__)
_FIRST_RETRY_SECONDS = 0.1  # after a failed start; doubled per failure in a row
_MAX_RETRY_SECONDS = 30.0


class SandboxPool:
    """Up to ``size`` idle pre-started sandboxes, refilled in the background.

    Args:
        start: starts one sandbox (:meth:`Prestarted.start` with a config);
            called on the pool's thread only.
        size: how many idle sandboxes to keep (starting or ready).
    """

    def __init__(self, start: Callable[[], Prestarted], size: int) -> None:
        if size < 1:
            raise ValueError("a sandbox pool needs a size of at least 1")
        self._start = start
        self._size = size
        self._cond = threading.Condition()
        self._starting: list[Prestarted] = []  # started, K_IDLE not yet seen
        self._ready: deque[Prestarted] = deque()  # waiting for a job, oldest first
        self._dead: list[Prestarted] = []  # to kill and reap on the pool's thread
        self._lent = 0  # taken and not yet released: the thread waits for them at close
        self._closed = False
        self._idle_gone = threading.Event()
        self._failures = 0  # failed starts in a row
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._thread = threading.Thread(target=self._run, name="python-sandbox-pool", daemon=True)
        self._thread.start()

    # -- callers ------------------------------------------------------------

    def take(self) -> Prestarted | None:
        """A ready, live sandbox for one job, or None (then run the job cold).

        The caller must :meth:`release` it once the job's process is reaped.
        """
        with self._cond:
            while self._ready:
                box = self._ready.popleft()
                if box.alive():
                    self._lent += 1
                    self._wake()  # start its replacement
                    return box
                self._dead.append(box)
            if self._dead:
                self._wake()
        return None

    def release(self, box: Prestarted) -> None:
        """``box`` (from :meth:`take`) has run its job and been reaped."""
        with self._cond:
            self._lent -= 1
            self._cond.notify_all()

    def wait_ready(self, timeout: float) -> bool:
        """Block until ``size`` sandboxes are ready (for tests and benchmarks)."""
        with self._cond:
            return (
                self._cond.wait_for(lambda: self._closed or len(self._ready) >= self._size, timeout)
                and not self._closed
            )

    def idle_pids(self) -> list[int]:
        """bwrap pids of the idle sandboxes, starting or ready."""
        with self._cond:
            return [box.pid for box in (*self._starting, *self._ready)]

    def close(self) -> None:
        """Kill and reap every idle sandbox; returns once they are gone.

        Sandboxes taken for a job keep running; the thread, their parent,
        exits after the last one is released.
        """
        with self._cond:
            self._closed = True
            self._wake()
            self._cond.notify_all()
        self._idle_gone.wait()
        with self._cond:
            busy = self._lent > 0
        if not busy:
            self._thread.join()

    # -- the pool's thread ----------------------------------------------------

    def _wake(self) -> None:  # with self._cond held
        if self._wake_w >= 0:
            try:
                os.write(self._wake_w, b"x")
            except BlockingIOError:
                pass  # already awake

    def _run(self) -> None:
        try:
            self._refill_loop()
        except Exception:  # noqa: BLE001 - logged; runs fall back to cold sandboxes
            _log.exception("python sandbox pool failed; tasks run in cold sandboxes")
        finally:
            self._shutdown()

    def _refill_loop(self) -> None:
        retry_at = 0.0
        while True:
            with self._cond:
                if self._closed:
                    return
                dead, self._dead = self._dead, []
                missing = self._size - len(self._starting) - len(self._ready)
            for box in dead:
                box.kill()
            timeout: float | None = None
            if missing > 0:
                delay = retry_at - time.monotonic()
                if delay > 0:
                    timeout = delay
                elif not self._start_some(missing):
                    retry_at = time.monotonic() + self._backoff()
                    timeout = retry_at - time.monotonic()
            if self._watch(timeout):
                retry_at = time.monotonic() + self._backoff()

    def _backoff(self) -> float:
        self._failures += 1
        delay = min(_FIRST_RETRY_SECONDS * 2.0 ** (self._failures - 1), _MAX_RETRY_SECONDS)
        _log.warning("a pre-started python sandbox failed to start; next try in %.1f s", delay)
        return delay

    def _start_some(self, count: int) -> bool:
        for _ in range(count):
            try:
                box = self._start()
            except Exception:  # noqa: BLE001 - logged; the pool retries later
                _log.debug("starting a pre-started sandbox failed", exc_info=True)
                return False
            with self._cond:
                if not self._closed:
                    self._starting.append(box)
                    continue
            box.kill()
            return True
        return True

    def _watch(self, timeout: float | None) -> bool:
        """Wait for K_IDLE, a death or a wake-up; True if a start failed."""
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        with self._cond:  # only take() removes boxes, under the lock: these fds are open
            by_fd = {box.fileno(): box for box in (*self._starting, *self._ready)}
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        events = poller.poll(None if timeout is None else max(0, int(timeout * 1000) + 1))
        start_failed = False
        for fd, _ in events:
            if fd == self._wake_r:
                while True:
                    try:
                        if not os.read(self._wake_r, 64):
                            break
                    except BlockingIOError:
                        break
                continue
            start_failed |= self._on_readable(by_fd[fd])
        return start_failed

    def _on_readable(self, box: Prestarted) -> bool:
        with self._cond:
            # A box taken meanwhile belongs to its job now (its fd may even be
            # another file's): leave it alone.
            if any(b is box for b in self._starting):
                state = box.read_idle()
                if state is None:
                    return False
                self._starting = [b for b in self._starting if b is not box]
                if state:
                    self._ready.append(box)
                    self._failures = 0
                    self._cond.notify_all()
                    return False
                self._dead.append(box)
                return True
            if any(b is box for b in self._ready):
                if box.read_idle() is None:
                    return False
                self._ready = deque(b for b in self._ready if b is not box)
                self._dead.append(box)  # died while idle: replaced at once
        return False

    def _shutdown(self) -> None:
        with self._cond:
            self._closed = True
            boxes = [*self._starting, *self._ready, *self._dead]
            self._starting, self._ready, self._dead = [], deque(), []
        for box in boxes:
            box.kill()
        self._idle_gone.set()
        with self._cond:
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._lent <= 0)
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1
