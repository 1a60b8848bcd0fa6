"""Wake-ups between the RPC event loop, pool threads and long-polls."""

from __future__ import annotations

import asyncio
import threading
import time

from confide.services._notify import AsyncWaker, Notifier


def test_async_waker_is_woken_from_another_thread() -> None:
    async def main() -> float:
        waker = AsyncWaker()
        threading.Timer(0.05, waker.set).start()
        t0 = time.monotonic()
        await waker.pause(5.0)
        return time.monotonic() - t0

    assert asyncio.run(main()) < 2.0


def test_async_waker_pause_times_out_and_clears() -> None:
    async def main() -> tuple[float, float]:
        waker = AsyncWaker()
        t0 = time.monotonic()
        await waker.pause(0.05)
        timed_out = time.monotonic() - t0
        waker.set()  # on the loop: set at once
        await waker.pause(5.0)  # returns at once, and clears
        t1 = time.monotonic()
        await waker.pause(0.05)  # cleared: waits the full timeout again
        return timed_out, time.monotonic() - t1

    timed_out, second = asyncio.run(main())
    assert timed_out >= 0.04
    assert second >= 0.04


def test_task_ended_wakes_thread_and_loop_waiters_of_that_task_only() -> None:
    n = Notifier()
    mine, other = threading.Event(), threading.Event()
    n.watch("task-a", mine)
    n.watch("task-b", other)
    n.task_ended("task-a")
    assert mine.is_set() and not other.is_set()
    n.unwatch("task-a", mine)
    mine.clear()
    n.task_ended("task-a")
    assert not mine.is_set()


def test_work_wakes_at_most_count_idle_polls_in_order() -> None:
    n = Notifier()
    polls = [threading.Event() for _ in range(3)]
    seq = n.work_seq()
    assert all(n.idle(seq, p) for p in polls)
    n.work_available(2)
    assert [p.is_set() for p in polls] == [True, True, False]
    n.work_available(1)
    assert polls[2].is_set()


def test_idle_refuses_to_wait_when_work_came_after_the_last_look() -> None:
    n = Notifier()
    seq = n.work_seq()
    n.work_available()  # announced between the lease attempt and idle()
    poll = threading.Event()
    assert n.idle(seq, poll) is False
    n.work_available()
    assert not poll.is_set()  # it was never queued


def test_a_poll_that_left_is_not_woken_in_place_of_another() -> None:
    n = Notifier()
    gone, waiting = threading.Event(), threading.Event()
    seq = n.work_seq()
    n.idle(seq, gone)
    n.idle(seq, waiting)
    n.not_idle(gone)  # timed out or canceled
    n.not_idle(gone)  # twice is harmless
    n.work_available(1)
    assert waiting.is_set() and not gone.is_set()
