"""Rust standard-library behaviour the builtins must reproduce byte for byte.

Teaclave's builtins are Rust; their outputs and error texts depend on
``str::trim``, ``BufRead::lines``, ``str::parse::<f32/f64/u32>`` and the
float formatting of ``{}``, ``{:?}``, ``{:.N}`` and serde_json (ryu). This
module is pure: text in, text out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

import numpy as np

from confide._json import digits_of, ryu_layout
from confide.invocation import FunctionError

__all__ = [
    "RUST_WHITESPACE",
    "decode_utf8",
    "fmt_debug_f64",
    "fmt_display_f64",
    "fmt_fixed",
    "json_f32",
    "json_f64",
    "parse_f32",
    "parse_f64",
    "parse_u32",
    "rust_lines",
    "rust_trim",
]

#: Characters with the Unicode ``White_Space`` property (Rust ``char::is_whitespace``).
RUST_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

# Rust's float grammar (core::num::dec2flt): sign, then digits with an optional
# fraction and exponent, or inf/infinity/nan in any case. No whitespace, no '_'.
_FLOAT_RE = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)\Z",
    re.IGNORECASE,
)
_U32_RE = re.compile(r"\+?[0-9]+\Z")


def rust_trim(text: str) -> str:
    """``str::trim``: strip Unicode ``White_Space`` from both ends."""
    return text.strip(RUST_WHITESPACE)


def decode_utf8(data: bytes) -> str:
    """``String::from_utf8`` with Rust's ``Utf8Error`` message on failure.

    Raises:
        FunctionError: ``data`` is not valid UTF-8.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.reason == "unexpected end of data":
            raise FunctionError(f"incomplete utf-8 byte sequence from index {e.start}") from e
        raise FunctionError(
            f"invalid utf-8 sequence of {e.end - e.start} bytes from index {e.start}"
        ) from e


def rust_lines(data: bytes) -> Iterator[str]:
    """``BufRead::lines``: split on ``\\n``, drop one trailing ``\\r``.

    A final empty segment (after a trailing newline) is not a line. Each line is
    decoded lazily, so an invalid line is reported when it is reached.

    Raises:
        FunctionError: a line is not valid UTF-8 (Rust's ``io::Error`` text).
    """
    if not data:
        return
    parts = data.split(b"\n")
    if parts[-1] == b"":
        parts.pop()
    for raw in parts:
        line = raw[:-1] if raw.endswith(b"\r") else raw
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise FunctionError("stream did not contain valid UTF-8") from e


def _float_error(text: str) -> FunctionError:
    if text == "":
        return FunctionError("cannot parse float from empty string")
    return FunctionError("invalid float literal")


def parse_f64(text: str) -> float:
    """``str::parse::<f64>()`` (no surrounding whitespace allowed).

    Raises:
        FunctionError: ``invalid float literal`` / ``cannot parse float from empty string``.
    """
    if not _FLOAT_RE.match(text):
        raise _float_error(text)
    return float(text)


def parse_f32(text: str) -> np.float32:
    """``str::parse::<f32>()``.

    The decimal is rounded to f64 first, then to f32. This double rounding can
    differ from Rust's direct rounding only for inputs with more than ~17
    significant digits lying almost exactly between two f32 values.

    Raises:
        FunctionError: as :func:`parse_f64`.
    """
    value = parse_f64(text)
    with np.errstate(over="ignore"):
        return np.float32(value)


def parse_u32(text: str) -> int:
    """``str::parse::<u32>()``.

    Raises:
        FunctionError: Rust's ``ParseIntError`` text.
    """
    if text == "":
        raise FunctionError("cannot parse integer from empty string")
    if not _U32_RE.match(text) or text == "+":
        raise FunctionError("invalid digit found in string")
    value = int(text)
    if value > 0xFFFFFFFF:
        raise FunctionError("number too large to fit in target type")
    return value


def _shortest_digits(value: float, f32: bool) -> tuple[str, int]:
    """Shortest round-trip digits ``d1d2…dn`` and exponent ``k`` with value = 0.d1…dn x 10^k."""
    text = (
        np.format_float_scientific(np.float32(value), unique=True, trim="-")
        if f32
        else repr(abs(value))
    )
    return digits_of(text)


def _non_finite(value: float) -> str | None:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return None


def _plain_decimal(digits: str, k: int, min_frac: int) -> str:
    """0.digits x 10^k as plain decimal with at least ``min_frac`` fraction digits."""
    if k <= 0:
        int_part, frac = "0", "0" * (-k) + digits
    elif k >= len(digits):
        int_part, frac = digits + "0" * (k - len(digits)), ""
    else:
        int_part, frac = digits[:k], digits[k:]
    if len(frac) < min_frac:
        frac += "0" * (min_frac - len(frac))
    return int_part + ("." + frac if frac else "")


def _ryu(value: float, f32: bool) -> str:
    # serde_json writes non-finite floats as null.
    if not math.isfinite(value):
        return "null"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    digits, kk = _shortest_digits(value, f32)
    return ryu_layout(value < 0, digits, kk, 13 if f32 else 16)


def json_f64(value: float) -> str:
    """serde_json's rendering of an ``f64`` (ryu layout)."""
    return _ryu(float(value), f32=False)


def json_f32(value: float | np.float32) -> str:
    """serde_json's rendering of an ``f32`` (shortest f32 digits, ryu layout)."""
    return _ryu(float(value), f32=True)


def fmt_display_f64(value: float) -> str:
    """Rust ``format!("{}", f64)``: shortest round-trip digits, never an exponent."""
    special = _non_finite(value)
    if special is not None:
        return special
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    digits, k = _shortest_digits(value, f32=False)
    return ("-" if value < 0 else "") + _plain_decimal(digits, k, 0)


def fmt_debug_f64(value: float) -> str:
    """Rust ``format!("{:?}", f64)`` (Rust ≥ 1.58 layout).

    Plain decimal with at least one fraction digit when ``1e-4 <= |x| < 1e16``
    (or zero), otherwise shortest scientific ``d.ddde-N``.
    """
    special = _non_finite(value)
    if special is not None:
        return special
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    digits, k = _shortest_digits(value, f32=False)
    if 1e-4 <= abs(value) < 1e16:
        return sign + _plain_decimal(digits, k, 1)
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mant}e{k - 1}"


def fmt_fixed(value: float, places: int) -> str:
    """Rust ``format!("{:.N}", x)`` for a finite or special float.

    Python's ``%.Nf`` rounds the exact binary value half-to-even, as Rust does.
    """
    special = _non_finite(value)
    if special is not None:
        return special
    return f"{value:.{places}f}"
