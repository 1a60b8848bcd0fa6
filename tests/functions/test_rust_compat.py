"""Rust std behaviour the builtins depend on, checked against rustc output.

Expected strings were printed by a rustc-compiled program (`{}`, `{:?}`, `{:.N}`)
on this machine; serde_json layouts follow ryu's format64/format32 rules.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from confide.functions._rust import (
    fmt_debug_f64,
    fmt_display_f64,
    fmt_fixed,
    json_f32,
    json_f64,
    parse_f32,
    parse_f64,
    parse_u32,
    rust_lines,
    rust_trim,
)
from confide.invocation import FunctionError

RUSTC_F64 = [
    # value, "{}", "{:?}", "{:.4}", "{:.10}"
    (1.0, "1", "1.0", "1.0000", "1.0000000000"),
    (0.1, "0.1", "0.1", "0.1000", "0.1000000000"),
    (1e-7, "0.0000001", "1e-7", "0.0000", "0.0000001000"),
    (1.5e-5, "0.000015", "1.5e-5", "0.0000", "0.0000150000"),
    (1e-4, "0.0001", "0.0001", "0.0001", "0.0001000000"),
    (1e16, "10000000000000000", "1e16", "10000000000000000.0000", None),
    (1.2345e16, "12345000000000000", "1.2345e16", None, None),
    (-2.4154563605850874, "-2.4154563605850874", "-2.4154563605850874", "-2.4155", None),
    (-0.0, "-0", "-0.0", "-0.0000", "-0.0000000000"),
    (1e15, "1000000000000000", "1000000000000000.0", None, None),
    (0.30000000000000004, "0.30000000000000004", "0.30000000000000004", "0.3000", None),
]


@pytest.mark.parametrize(("value", "display", "debug", "fixed4", "fixed10"), RUSTC_F64)
def test_float_formatting_matches_rustc(
    value: float, display: str, debug: str, fixed4: str | None, fixed10: str | None
) -> None:
    assert fmt_display_f64(value) == display
    assert fmt_debug_f64(value) == debug
    if fixed4 is not None:
        assert fmt_fixed(value, 4) == fixed4
    if fixed10 is not None:
        assert fmt_fixed(value, 10) == fixed10


def test_fixed_formatting_rounds_half_to_even_like_rustc() -> None:
    assert [fmt_fixed(v, 1) for v in (0.25, 0.35)] == ["0.2", "0.3"]
    assert [fmt_fixed(v, 0) for v in (0.5, 1.5)] == ["0", "2"]


def test_f32_fixed_formatting_prints_the_exact_f32_value() -> None:
    # rustc: format!("{:.10}", 0.1f32) == "0.1000000015"
    assert fmt_fixed(float(np.float32(0.1)), 10) == "0.1000000015"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1.0"),
        (0.3, "0.3"),
        (1e-7, "1e-7"),
        (1e16, "1e16"),
        (1e15, "1000000000000000.0"),
        (-0.016518720611358107, "-0.016518720611358107"),
        (float("nan"), "null"),
    ],
)
def test_serde_json_f64_layout(value: float, text: str) -> None:
    assert json_f64(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.6500001, "1.6500001"),
        (-0.000029444695, "-0.000029444695"),
        (0.1, "0.1"),
        (1e12, "1000000000000.0"),
        (1e13, "1e13"),
        (4.8500004, "4.8500004"),
    ],
)
def test_serde_json_f32_layout(value: float, text: str) -> None:
    assert json_f32(np.float32(value)) == text


def test_rust_trim_keeps_characters_python_would_strip() -> None:
    assert rust_trim("\x1c a \u3000") == "\x1c a"  # U+001C is not White_Space in Rust


def test_lines_split_like_bufread_lines() -> None:
    assert list(rust_lines(b"a\r\nb\n\nc")) == ["a", "b", "", "c"]
    assert list(rust_lines(b"a\n")) == ["a"]
    assert list(rust_lines(b"")) == []


def test_rejects_invalid_utf8_line_with_rust_io_error_text() -> None:
    with pytest.raises(FunctionError, match=r"stream did not contain valid UTF-8"):
        list(rust_lines(b"ok\n\xff\n"))


@pytest.mark.parametrize("text", ["1", "-1.5", "+2", ".5", "1.", "1e5", "inf", "NaN", "infinity"])
def test_parses_what_rust_parses(text: str) -> None:
    parse_f64(text)
    parse_f32(text)


@pytest.mark.parametrize("text", [" 1", "1 ", "1_0", "0x10", "1e", "e5", "--1", "nan(1)"])
def test_rejects_floats_rust_rejects(text: str) -> None:
    with pytest.raises(FunctionError, match=r"^invalid float literal$"):
        parse_f64(text)


def test_rejects_empty_float_with_rust_text() -> None:
    with pytest.raises(FunctionError, match=r"^cannot parse float from empty string$"):
        parse_f32("")


def test_u32_parsing_matches_rust_errors() -> None:
    assert parse_u32("+7") == 7
    with pytest.raises(FunctionError, match=r"invalid digit"):
        parse_u32("-1")
    with pytest.raises(FunctionError, match=r"too large"):
        parse_u32("4294967296")


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_renderings_round_trip(value: float) -> None:
    assert float(fmt_display_f64(value)) == value
    assert float(fmt_debug_f64(value)) == value
    assert float(json_f64(value)) == value
    assert "e" not in fmt_display_f64(value)


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_f32_json_rendering_round_trips_through_f32(value: float) -> None:
    assert np.float32(float(json_f32(np.float32(value)))) == np.float32(value)


@given(st.text(alphabet="0123456789+-.eEinfatyINFATY_ x", max_size=12))
def test_float_parser_never_crashes_and_agrees_with_python_when_accepting(text: str) -> None:
    try:
        value = parse_f64(text)
    except FunctionError as e:
        assert e.reason in ("invalid float literal", "cannot parse float from empty string")
        return
    expected = float(text)
    assert value == expected or (value != value and expected != expected)
