"""JSON text the way Teaclave (serde_json) writes it.

Compact, keys sorted, UTF-8 not escaped, and numbers rendered like serde_json
(ryu): shortest round-trip digits, integral floats keep ``.0``, exponents as
``1e16`` / ``1e-7``. Clients see this text in ``GetTask.function_arguments``
and functions receive it (spec §3.7.1, §5.2).
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["digits_of", "dumps", "format_f64", "ryu_layout"]


def digits_of(text: str) -> tuple[str, int]:
    """Digits ``d1…dn`` and ``k`` with value = 0.d1…dn x 10^k, from a float's
    shortest round-trip text (``repr`` or numpy's scientific form)."""
    mantissa, _, exp_text = text.lstrip("-").partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    digits = (int_part + frac_part).lstrip("0")
    exp10 = int(exp_text or "0") - len(frac_part)
    stripped = digits.rstrip("0")
    exp10 += len(digits) - len(stripped)
    return stripped, len(stripped) + exp10


def ryu_layout(negative: bool, digits: str, k: int, plain_limit: int) -> str:
    """ryu's ``format64``/``format32`` layout (what serde_json writes) of
    ``0.digits x 10^k``; ``plain_limit`` is 16 for f64 and 13 for f32."""
    n = len(digits)
    if n <= k <= plain_limit:
        text = digits + "0" * (k - n) + ".0"
    elif 0 < k <= plain_limit:
        text = digits[:k] + "." + digits[k:]
    elif -5 < k <= 0:
        text = "0." + "0" * (-k) + digits
    elif n == 1:
        text = f"{digits}e{k - 1}"
    else:
        text = f"{digits[0]}.{digits[1:]}e{k - 1}"
    return ("-" if negative else "") + text


def format_f64(value: float) -> str:
    """serde_json's text of a finite ``f64``: ``1.0``, ``0.1``, ``1e16``, ``1e-7``."""
    if not math.isfinite(value):
        raise ValueError("JSON cannot hold NaN or infinity")
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    digits, k = digits_of(repr(abs(value)))
    return ryu_layout(value < 0, digits, k, 16)


def dumps(value: Any) -> str:
    """Compact, key-sorted JSON text with serde_json's number rendering."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_f64(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: str(kv[0]).encode())
        return "{" + ",".join(f"{dumps(str(k))}:{dumps(v)}" for k, v in items) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")
