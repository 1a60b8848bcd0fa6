"""``builtin-echo``: return the ``message`` argument."""

from __future__ import annotations

from ._args import Field, Kind, decode_arguments
from ._context import FunctionContext

__all__ = ["NAME", "run"]

NAME = "builtin-echo"

_FIELDS = (Field("message", Kind.STR),)


def run(ctx: FunctionContext) -> str:
    """Return ``message`` unchanged (and log it at INFO).

    Raises:
        FunctionError: ``Cannot deserialize arguments``.
    """
    message: str = decode_arguments(ctx.arguments, _FIELDS)["message"]
    ctx.log(message)
    return message
