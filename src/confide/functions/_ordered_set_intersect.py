"""``builtin-ordered-set-intersect``: mark the common items of two sorted hex lists."""

from __future__ import annotations

from confide.invocation import FunctionError

from ._args import Field, Kind, decode_arguments
from ._context import FunctionContext
from ._rust import rust_lines

__all__ = ["NAME", "run"]

NAME = "builtin-ordered-set-intersect"

_FIELDS = (Field("order", Kind.STR),)
# Teaclave spells it "desending" (Q1); "descending" is accepted as an extension.
_ORDERS = {"ascending": True, "desending": False, "descending": False}
_HEX = frozenset("0123456789abcdefABCDEF")
_CANCEL_EVERY = 4096


def _hex_decode(line: str) -> bytes:
    """``hex::decode`` with the hex crate's error texts."""
    for index, char in enumerate(line):
        if char not in _HEX:
            raise FunctionError(f"Invalid character {char!r} at position {index}")
    if len(line) % 2:
        raise FunctionError("Odd number of digits")
    return bytes.fromhex(line)


def _parse(ctx: FunctionContext, data: bytes, ascending: bool) -> list[bytes]:
    items: list[bytes] = []
    for line in rust_lines(data):
        value = _hex_decode(line)
        if items and ((ascending and value < items[-1]) or (not ascending and value > items[-1])):
            raise FunctionError("Invalid ordering")
        items.append(value)
        if len(items) % _CANCEL_EVERY == 0:
            ctx.check_cancel()
    return items


def _intersect(a: list[bytes], b: list[bytes], ascending: bool) -> tuple[bytearray, bytearray]:
    res1 = bytearray(b"0" * len(a))
    res2 = bytearray(b"0" * len(b))
    i = j = 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            res1[i] = res2[j] = ord("1")
            i += 1
            j += 1
        elif (a[i] < b[j]) == ascending:
            i += 1
        else:
            j += 1
    return res1, res2


def run(ctx: FunctionContext) -> str:
    """Write one ``0``/``1`` per line of each input; return ``"{k} common items"``.

    As in Teaclave, both inputs are opened and both outputs created before the
    arguments are checked.

    Raises:
        FunctionError: ``Cannot deserialize arguments``, ``Invalid order``,
            ``Invalid ordering``, hex decode errors.
    """
    data1 = ctx.read_input("input_data1")
    data2 = ctx.read_input("input_data2")
    ctx.write_output("output_result1", b"")
    ctx.write_output("output_result2", b"")
    order = decode_arguments(ctx.arguments, _FIELDS)["order"]
    if order not in _ORDERS:
        raise FunctionError("Invalid order")
    ascending = _ORDERS[order]
    vec1 = _parse(ctx, data1, ascending)
    vec2 = _parse(ctx, data2, ascending)
    res1, res2 = _intersect(vec1, vec2, ascending)
    ctx.write_output("output_result1", bytes(res1))
    ctx.write_output("output_result2", bytes(res2))
    return f"{res1.count(b'1')} common items"
