"""A pure-Python speed reference printed by the benchmarks.

Shared machines run the interpreter at very different speeds from one run to
the next (seen here: 0.44 s to 1.05 s for the same loop within an hour), so
each benchmark prints this figure beside its own to make runs comparable.
"""

from __future__ import annotations

import time


def python_speed() -> float:
    """Seconds for 10 million pure-Python additions."""
    t0 = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - t0


def speed_line() -> str:
    return f"Python speed reference {python_speed():.2f} s (10M additions; lower is faster)"
