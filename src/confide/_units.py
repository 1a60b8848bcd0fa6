"""Sizes as operators write them: whole binary units (``256 MiB``)."""

from __future__ import annotations

__all__ = ["binary_size"]

_UNITS = (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))


def binary_size(value: int) -> str | None:
    """``268435456`` -> ``"256 MiB"``; ``None`` when no whole unit fits exactly."""
    for name, size in _UNITS:
        if value >= size and value % size == 0:
            return f"{value // size} {name}"
    return None
