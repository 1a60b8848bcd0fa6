"""``builtin-ordered-set-join``: merge-join two CSV files sorted on a key column."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from confide.invocation import FunctionError

from ._args import Field, Kind, decode_arguments
from ._context import FunctionContext
from ._rust import decode_utf8

__all__ = ["NAME", "run"]

NAME = "builtin-ordered-set-join"

_FIELDS = (
    Field("left_column", Kind.USIZE),
    Field("right_column", Kind.USIZE),
    Field("ascending", Kind.BOOL),
    Field("drop", Kind.BOOL),
)
_CANCEL_EVERY = 4096


def _records(data: bytes) -> Iterator[list[str]]:
    """Rows as the Rust ``csv`` reader yields them (no headers, not flexible).

    Blank lines are skipped; every record must have as many fields as the first.
    """
    reader = csv.reader(io.StringIO(decode_utf8(data), newline=""), strict=False)
    width: int | None = None
    try:
        for row in reader:
            if not row:
                continue
            if width is None:
                width = len(row)
            elif len(row) != width:
                raise FunctionError(
                    f"CSV error: found record with {len(row)} fields, "
                    f"but the previous record has {width} fields"
                )
            yield row
    except csv.Error as e:
        raise FunctionError(f"CSV error: {e}") from e


def _field(text: str) -> str:
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv_line(fields: list[str]) -> str:
    if fields == [""]:
        return '""\n'  # a lone empty field is quoted so the row is not blank
    return ",".join(_field(f) for f in fields) + "\n"


def _without(row: list[str], index: int) -> list[str]:
    return [f for i, f in enumerate(row) if i != index]


def run(ctx: FunctionContext) -> str:
    """Write the joined rows to ``output_result``; return ``"{count} records"``.

    Raises:
        FunctionError: ``Cannot deserialize arguments``, ``input1 is empty``,
            ``input2 is empty``, ``invalid index``, CSV errors.
    """
    args = decode_arguments(ctx.arguments, _FIELDS)
    left_col: int = args["left_column"]
    right_col: int = args["right_column"]
    ascending: bool = args["ascending"]
    rows1 = _records(ctx.read_input("input_data1"))
    rows2 = _records(ctx.read_input("input_data2"))
    ctx.write_output("output_result", b"")
    record1 = next(rows1, None)
    if record1 is None:
        raise FunctionError("input1 is empty")
    record2 = next(rows2, None)
    if record2 is None:
        raise FunctionError("input2 is empty")
    out: list[str] = []
    steps = 0
    while True:
        steps += 1
        if steps % _CANCEL_EVERY == 0:
            ctx.check_cancel()
        if left_col >= len(record1) or right_col >= len(record2):
            raise FunctionError("invalid index")
        key1, key2 = record1[left_col], record2[right_col]
        if key1 == key2:
            first = _without(record1, left_col) if args["drop"] else record1
            out.append(_csv_line(first + _without(record2, right_col)))
            record1 = next(rows1, None)
            if record1 is None:
                break
            record2 = next(rows2, None)
            if record2 is None:
                break
        elif (key1 < key2) == ascending:
            record1 = next(rows1, None)
            if record1 is None:
                break
        else:
            record2 = next(rows2, None)
            if record2 is None:
                break
    ctx.write_output("output_result", "".join(out).encode("utf-8"))
    return f"{len(out)} records"
