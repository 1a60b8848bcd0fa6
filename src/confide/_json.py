"""JSON text the way Teaclave (serde_json) writes it.

Compact, keys sorted, UTF-8 not escaped, and numbers rendered like serde_json
(ryu): shortest round-trip digits, integral floats keep ``.0``, exponents as
``1e21`` / ``1e-7``. Clients see this text in ``GetTask.function_arguments``
and functions receive it (spec §3.7.1, §5.2).
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["dumps"]


def _float(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError("JSON cannot hold NaN or infinity")
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
    point = n + exp10  # position of the decimal point relative to the digits
    if exp10 >= 0 and point <= 21:
        text = digits + "0" * exp10 + ".0"
    elif 0 < point <= 21:
        text = digits[:point] + "." + digits[point:]
    elif -5 < point <= 0:
        text = "0." + "0" * (-point) + digits
    elif n == 1:
        text = f"{digits}e{point - 1}"
    else:
        text = f"{digits[0]}.{digits[1:]}e{point - 1}"
    return sign + text


def dumps(value: Any) -> str:
    """Compact, key-sorted JSON text with serde_json's number rendering."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: str(kv[0]).encode())
        return "{" + ",".join(f"{dumps(str(k))}:{dumps(v)}" for k, v in items) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")
