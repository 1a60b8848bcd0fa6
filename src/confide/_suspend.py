"""Blocking code run on the event loop's thread, suspended while it waits.

With PostgreSQL every statement is a network round trip. Run on threads, each
transaction costs hand-offs between the event loop, a database thread and
back, every one a futex wake-up and a fight for the GIL: measured at about
five times SQLite's context switches per task, and most of the server's CPU
(docs/architecture.md, "Where the server's time goes"). Here the same
synchronous code (``Database`` transactions, the services above them) runs in
a *greenlet* on the loop's own thread instead. Where it would wait for the
database's socket, it parks: the greenlet switches back to the loop, which
serves other RPCs and switches into the greenlet again once the socket is
ready. No thread, no lock hand-off, no change to the code above the storage
layer.

The rules for code that runs this way:

* it may wait only through this module (:func:`wait_socket`, :class:`Wake`,
  :func:`holding`, :func:`blocking`): a plain blocking wait would stop the
  loop, and with it the greenlet that was to end the wait;
* the same code keeps working on an ordinary thread, where each of those
  waits simply blocks;
* a call is never interrupted half-way: when the awaiting task is cancelled
  (the client left), the call still runs to its end, as it did on a thread,
  and the cancellation is raised afterwards. A transaction, or the audit
  log's group commit that other callers wait on, is never abandoned mid-way.

This is a foundation module: it imports nothing of confide.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import greenlet  # type: ignore[import-untyped]

__all__ = ["Wake", "blocking", "holding", "run", "suspendable", "wait_socket"]

T = TypeVar("T")
P = ParamSpec("P")

#: How often a parked greenlet tries again for a lock another caller holds.
_LOCK_POLL_S = 0.0005


class _Suspendable(greenlet.greenlet):  # type: ignore[misc]
    """A greenlet run by :func:`run`: its waits park instead of blocking."""


async def run(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` on this thread, in a greenlet that parks on waits.

    Runs with a copy of the caller's context variables (logging context), as
    ``run_in_executor`` would. Returns what ``fn`` returns; raises what it raises.
    A parked greenlet is resumed straight from the loop's callback for its
    wait (a switch, no task or future in between); this coroutine only awaits
    the end.
    """
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()
    result: list[T] = []
    raised: list[BaseException] = []

    def body() -> None:
        try:
            result.append(fn(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 - raised again by the awaiting caller
            raised.append(e)
        if not loop.is_closed():  # else a parked call dropped at shutdown (GreenletExit)
            ended.set_result(None)

    g = _Suspendable(body)
    g.gr_context = contextvars.copy_context()
    g.switch()
    cancelled: asyncio.CancelledError | None = None
    while not ended.done():
        try:
            await asyncio.shield(ended)
        except asyncio.CancelledError as e:
            cancelled = e  # the caller left: the call ends first (module docstring)
    if raised:
        raise raised[0]
    if cancelled is not None:
        raise cancelled
    return result[0]


def suspendable() -> bool:
    """Whether the caller runs under :func:`run` (its waits may park)."""
    return isinstance(greenlet.getcurrent(), _Suspendable)


def _park() -> Any:
    """Switch back to the loop until a callback switches into this greenlet again;
    what it passed."""
    return greenlet.getcurrent().parent.switch()


def wait_socket(fd: int, *, write: bool) -> tuple[bool, bool]:
    """Park until ``fd`` is readable (or, with ``write``, writable): (readable, writable).

    Only under :func:`run`; an error or hang-up on the socket reads as readable
    (the reader then finds out what happened)."""
    loop = asyncio.get_running_loop()
    resume = greenlet.getcurrent().switch
    loop.add_reader(fd, resume, True)
    if write:
        loop.add_writer(fd, resume, False)
    try:
        readable = _park()
    finally:
        loop.remove_reader(fd)
        if write:
            loop.remove_writer(fd)
    return readable, not readable


class Wake:
    """A one-shot wake-up: set once from any thread, waited for by one caller
    (a thread blocks, a greenlet under :func:`run` parks)."""

    __slots__ = ("_event", "_lock", "_parked")

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._parked: tuple[asyncio.AbstractEventLoop, Callable[[], Any]] | None = None

    def set(self) -> None:
        with self._lock:
            self._event.set()
            parked, self._parked = self._parked, None
        if parked is not None:
            loop, resume = parked
            loop.call_soon_threadsafe(resume)

    def wait(self) -> None:
        if not suspendable():
            self._event.wait()
            return
        with self._lock:
            if self._event.is_set():
                return
            self._parked = (asyncio.get_running_loop(), greenlet.getcurrent().switch)
        _park()


@contextmanager
def holding(lock: threading.Lock) -> Iterator[None]:
    """``with lock:`` for a lock that may be held across a wait by another greenlet
    of the same thread (blocking on it there would stop the loop for good): a
    greenlet under :func:`run` tries again every half millisecond meanwhile.
    Never with an ``RLock``: every greenlet of the thread would own it."""
    if not lock.acquire(blocking=not suspendable()):
        loop = asyncio.get_running_loop()
        while not lock.acquire(blocking=False):
            loop.call_later(_LOCK_POLL_S, greenlet.getcurrent().switch)
            _park()
    try:
        yield
    finally:
        lock.release()


def blocking(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)``, which blocks without a socket to park on (opening a
    connection): under :func:`run` on the loop's default thread pool, parked
    meanwhile; elsewhere right here."""
    if not suspendable():
        return fn(*args, **kwargs)
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    done = asyncio.get_running_loop().run_in_executor(None, call)
    resume = greenlet.getcurrent().switch
    done.add_done_callback(lambda _f: resume())
    _park()
    return done.result()
