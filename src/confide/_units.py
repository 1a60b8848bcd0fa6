"""Sizes and durations as operators write them: whole binary units (``256 MiB``), ``90d``."""

from __future__ import annotations

import re

__all__ = ["binary_size", "parse_duration"]

_UNITS = (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))


def binary_size(value: int) -> str | None:
    """``268435456`` -> ``"256 MiB"``; ``None`` when no whole unit fits exactly."""
    for name, size in _UNITS:
        if value >= size and value % size == 0:
            return f"{value // size} {name}"
    return None


_DURATION = re.compile(r"\s*([0-9]{1,9})\s*([smhdw])\s*\Z")
_DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str, *, minimum_s: int = 60) -> int | None:
    """``"90d"`` -> seconds; ``"off"`` (or ``"never"``, or empty) -> ``None``.

    Units: s, m, h, d, w (one number, one unit); at least ``minimum_s``.

    Raises:
        ValueError: anything else (the text says what is expected).
    """
    if text.strip().lower() in ("", "off", "never"):
        return None
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f'expected a duration such as "90d", "12h" or "off", got {text[:40]!r}')
    seconds = int(match.group(1)) * _DURATION_SECONDS[match.group(2)]
    if seconds < minimum_s:
        raise ValueError(f"must be at least {minimum_s} s, got {text!r}")
    return seconds
