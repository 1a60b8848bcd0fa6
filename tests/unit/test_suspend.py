"""confide._suspend: blocking code in greenlets on the event loop, parked on its waits."""

from __future__ import annotations

import asyncio
import contextvars
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from confide import _suspend

_WHO: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


class Ticker:
    """Counts its turns on the running event loop (every 5 ms): the loop was free meanwhile."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task = asyncio.ensure_future(self._tick())

    async def _tick(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0.005)

    def stop(self) -> int:
        self._task.cancel()
        return self.ticks


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def test_run_returns_raises_and_keeps_the_callers_context() -> None:
    def work(x: int, *, y: int) -> tuple[int, str, bool]:
        return x + y, _WHO.get(), _suspend.suspendable()

    def broken() -> None:
        raise KeyError("a bug")

    async def main() -> tuple[int, str, bool]:
        _WHO.set("caller")
        with pytest.raises(KeyError, match="a bug"):
            await _suspend.run(broken)
        return await _suspend.run(work, 1, y=2)

    assert asyncio.run(main()) == (3, "caller", True)
    assert not _suspend.suspendable()  # outside run: plain blocking code


def test_socket_waits_park_and_the_loop_runs_meanwhile(
        pair: tuple[socket.socket, socket.socket]) -> None:
    """Two calls wait on their own sockets at once, on one thread; a third
    coroutine runs while both are parked; each resumes when its socket is ready."""
    a, b = pair
    c, d = socket.socketpair()
    order: list[str] = []

    def reader(sock: socket.socket, name: str) -> str:
        readable, writable = _suspend.wait_socket(sock.fileno(), write=False)
        assert (readable, writable) == (True, False)
        order.append(name)
        return f"{name}:{sock.recv(10).decode()}:{threading.current_thread().name}"

    async def main() -> list[str]:
        first = asyncio.ensure_future(_suspend.run(reader, a, "a"))
        second = asyncio.ensure_future(_suspend.run(reader, c, "c"))
        await asyncio.sleep(0.05)
        order.append("loop")  # both are parked: the loop is free
        d.send(b"2")  # the second socket first
        await asyncio.sleep(0.05)
        b.send(b"1")
        return list(await asyncio.gather(first, second))

    try:
        me = threading.current_thread().name
        assert asyncio.run(main()) == [f"a:1:{me}", f"c:2:{me}"]
        assert order == ["loop", "c", "a"]
    finally:
        c.close()
        d.close()


def test_a_write_wait_reports_writable(pair: tuple[socket.socket, socket.socket]) -> None:
    a, _ = pair

    async def main() -> tuple[bool, bool]:
        return await _suspend.run(_suspend.wait_socket, a.fileno(), write=True)

    assert asyncio.run(main())[1] is True


def test_a_cancelled_caller_lets_the_call_finish_first(
        pair: tuple[socket.socket, socket.socket]) -> None:
    """As on a thread: a transaction is never abandoned half-way; the caller
    sees the cancellation once the call has ended, and the socket is released."""
    a, b = pair
    finished = threading.Event()

    def reader() -> bytes:
        _suspend.wait_socket(a.fileno(), write=False)
        data = a.recv(10)
        finished.set()
        return data

    async def main() -> None:
        call = asyncio.ensure_future(_suspend.run(reader))
        await asyncio.sleep(0.02)
        call.cancel()
        await asyncio.sleep(0.02)
        assert not call.done() and not finished.is_set()  # still parked on its socket
        b.send(b"x")
        with pytest.raises(asyncio.CancelledError):
            await call
        assert finished.is_set()
        # the fd is no longer watched: a new wait on it works
        b.send(b"y")
        assert await _suspend.run(reader) == b"y"

    asyncio.run(main())


def test_a_wake_set_from_the_loop_a_thread_or_before_the_wait() -> None:
    async def main() -> None:
        early = _suspend.Wake()
        early.set()
        await _suspend.run(early.wait)  # already set: returns at once

        from_loop, from_thread = _suspend.Wake(), _suspend.Wake()
        waiting = [asyncio.ensure_future(_suspend.run(w.wait)) for w in (from_loop, from_thread)]
        await asyncio.sleep(0.02)
        assert not any(w.done() for w in waiting)
        from_loop.set()
        threading.Timer(0.02, from_thread.set).start()
        await asyncio.wait_for(asyncio.gather(*waiting), 5)

    asyncio.run(main())
    plain = _suspend.Wake()  # on a thread: an ordinary blocking wait
    threading.Timer(0.02, plain.set).start()
    plain.wait()


def test_holding_a_lock_across_a_wait_does_not_stop_the_loop() -> None:
    """One greenlet holds the lock while parked; another on the same thread
    waits for it without blocking the thread (which would hang both)."""
    lock = threading.Lock()
    release = _suspend.Wake()
    order: list[str] = []

    def holder() -> None:
        with _suspend.holding(lock):
            order.append("held")
            release.wait()
            order.append("releasing")

    def waiter() -> None:
        with _suspend.holding(lock):
            order.append("got it")

    async def main() -> None:
        first = asyncio.ensure_future(_suspend.run(holder))
        await asyncio.sleep(0.01)
        second = asyncio.ensure_future(_suspend.run(waiter))
        await asyncio.sleep(0.02)
        assert order == ["held"] and not second.done()
        release.set()
        await asyncio.wait_for(asyncio.gather(first, second), 5)

    started = time.monotonic()
    asyncio.run(main())
    assert order == ["held", "releasing", "got it"]
    assert time.monotonic() - started < 5
    with _suspend.holding(lock):  # on a thread: a plain acquire
        assert lock.locked()
    assert not lock.locked()


def test_blocking_calls_leave_the_loop_free() -> None:
    def slow() -> str:
        time.sleep(0.1)
        return threading.current_thread().name

    async def main() -> tuple[str, int]:
        ticker = Ticker()
        where = await _suspend.run(_suspend.blocking, slow)
        return where, ticker.stop()

    where, ticks = asyncio.run(main())
    assert where != threading.current_thread().name  # it ran on a pool thread
    assert ticks >= 5  # the loop kept running meanwhile
    assert _suspend.blocking(threading.current_thread) is threading.current_thread()
