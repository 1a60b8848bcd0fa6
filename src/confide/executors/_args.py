"""Argument flattening for the Python and WebAssembly executors (spec §5.2)."""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["flatten_arguments", "json_scalar_text"]


def _ryu_float(value: float) -> str:
    """Render a finite float the way serde_json (ryu) does.

    Python's ``repr`` already yields the shortest round-trip digits; only the
    layout differs (ryu: ``1e16`` -> ``10000000000000000.0``, ``1e-7`` -> ``1e-7``).
    """
    if not math.isfinite(value):
        return "null"  # serde_json cannot hold NaN/inf; JSON input never has them
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    mantissa, _, exp_text = repr(abs(value)).partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    digits = (int_part + frac_part).lstrip("0")
    exp10 = int(exp_text or "0") - len(frac_part)
    stripped = digits.rstrip("0")
    exp10 += len(digits) - len(stripped)
    digits = stripped
    n = len(digits)
    kk = n + exp10
    if 0 <= exp10 and kk <= 21:
        text = digits + "0" * exp10 + ".0"
    elif 0 < kk <= 21:
        text = digits[:kk] + "." + digits[kk:]
    elif -5 < kk <= 0:
        text = "0." + "0" * (-kk) + digits
    elif n == 1:
        text = f"{digits}e{kk - 1}"
    else:
        text = f"{digits[0]}.{digits[1:]}e{kk - 1}"
    return sign + text


def json_scalar_text(value: Any) -> str:
    """Compact JSON text of ``value`` with serde_json's number rendering."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _ryu_float(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(json_scalar_text(v) for v in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items())
        return "{" + ",".join(f"{json_scalar_text(k)}:{json_scalar_text(v)}" for k, v in items) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def flatten_arguments(arguments: dict[str, Any]) -> list[str]:
    """``{k: v}`` -> ``[k1, v1, k2, v2, ...]`` sorted by key bytes.

    String values pass as their raw text; anything else as compact JSON.
    """
    flat: list[str] = []
    for key in sorted(arguments, key=lambda k: k.encode()):
        value = arguments[key]
        flat.append(key)
        flat.append(value if isinstance(value, str) else json_scalar_text(value))
    return flat
