"""Argument flattening for the Python and WebAssembly executors (spec §5.2)."""

from __future__ import annotations

from typing import Any

from .._json import dumps

__all__ = ["flatten_arguments"]


def flatten_arguments(arguments: dict[str, Any]) -> list[str]:
    """``{k: v}`` -> ``[k1, v1, k2, v2, ...]`` sorted by key bytes.

    A JSON string value passes as its raw text; anything else as compact JSON
    text rendered like serde_json (``3``, ``0.1``, ``1.0``, ``true``, ``[1,2]``).
    """
    flat: list[str] = []
    for key in sorted(arguments, key=lambda k: k.encode()):
        value = arguments[key]
        flat.append(key)
        flat.append(value if isinstance(value, str) else dumps(value))
    return flat
