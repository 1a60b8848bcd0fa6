"""Parsing of the numeric CSV inputs shared by the learning builtins."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from confide.invocation import FunctionError

from ._context import FunctionContext
from ._rust import rust_lines, rust_trim

__all__ = ["parse_table"]

T = TypeVar("T")

_CANCEL_EVERY = 4096


def parse_table(
    ctx: FunctionContext,
    data: bytes,
    columns: int,
    parse: Callable[[str], T],
) -> list[list[T]]:
    """Parse lines of comma-separated numbers, exactly ``columns`` per line.

    Mirrors Teaclave's loop: each line is trimmed, must not be empty, is split
    on ``,`` (fields are *not* trimmed) and every field parsed before the
    column count is checked.

    Raises:
        FunctionError: ``Empty line``, a number parse error, ``Data format
            error: column len = {got}, expected = {columns}``, too many rows.
    """
    rows: list[list[T]] = []
    max_rows = ctx.limits.builtin_max_rows
    for line in rust_lines(data):
        trimmed = rust_trim(line)
        if not trimmed:
            raise FunctionError("Empty line")
        values = [parse(field) for field in trimmed.split(",")]
        if len(values) != columns:
            raise FunctionError(
                f"Data format error: column len = {len(values)}, expected = {columns}"
            )
        rows.append(values)
        if len(rows) > max_rows:
            raise FunctionError(f"Too many data lines: more than {max_rows}")
        if len(rows) % _CANCEL_EVERY == 0:
            ctx.check_cancel()
    return rows
