"""``builtin-private-join-and-compute``: sum amounts of identities every party has."""

from __future__ import annotations

from confide.invocation import FunctionError

from ._args import Field, Kind, decode_arguments
from ._context import FunctionContext
from ._rust import decode_utf8, rust_trim

__all__ = ["NAME", "run"]

NAME = "builtin-private-join-and-compute"

_FIELDS = (Field("num_user", Kind.USIZE),)
_U32_MAX = 0xFFFFFFFF


def _parse_amount(text: str) -> int | None:
    # str::parse::<u32>: optional '+', ASCII digits, no overflow.
    digits = text[1:] if text.startswith("+") else text
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    value = int(digits)
    return value if value <= _U32_MAX else None


def _parse_party(data: bytes) -> dict[str, int]:
    entries: dict[str, int] = {}
    for item in decode_utf8(data).split("\n"):
        pair = rust_trim(item)
        if len(pair.encode("utf-8")) < 3:
            continue
        parts = pair.split(":")
        if len(parts) != 2:
            continue
        amount = _parse_amount(rust_trim(parts[1]))
        if amount is None:
            continue
        entries[rust_trim(parts[0])] = amount  # a later line overwrites, as in Teaclave
    return entries


def run(ctx: FunctionContext) -> str:
    """Join ``input_data0..N-1``; write ``"{id}, {sum}\\n"`` lines to every ``output_data{i}``.

    Lines are in ascending identity order (Teaclave: HashMap order).

    Raises:
        FunctionError: ``Cannot deserialize arguments``, ``The demo requires at
            least two parties!``, a sum over u32 (Teaclave overflows, Q22), too many parties.
    """
    num_user: int = decode_arguments(ctx.arguments, _FIELDS)["num_user"]
    if num_user < 2:
        raise FunctionError("The demo requires at least two parties!")
    if num_user > ctx.limits.builtin_max_parties:
        raise FunctionError(f"Too many parties: {num_user} > {ctx.limits.builtin_max_parties}")
    counts: dict[str, int] = {}
    sums: dict[str, int] = {}
    for i in range(num_user):
        ctx.check_cancel()
        for identity, amount in _parse_party(ctx.read_input(f"input_data{i}")).items():
            counts[identity] = counts.get(identity, 0) + 1
            sums[identity] = sums.get(identity, 0) + amount
            if sums[identity] > _U32_MAX:
                raise FunctionError(f"Sum overflows u32 for identity {identity!r}")
    common = sorted(identity for identity, count in counts.items() if count == num_user)
    output = "".join(f"{identity}, {sums[identity]}\n" for identity in common).encode("utf-8")
    for i in range(num_user):
        ctx.write_output(f"output_data{i}", output)
    return f"{num_user} users join the task in total."
