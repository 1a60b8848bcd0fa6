"""The builtin executor (name ``builtin``): dispatches on the registered function name."""

from __future__ import annotations

from ._base import FunctionError, Invocation

__all__ = ["BuiltinExecutor"]


def _echo(inv: Invocation) -> str:
    message = inv.arguments.get("message")
    if not isinstance(message, str):
        raise FunctionError("Cannot deserialize arguments")
    if inv.log is not None:
        inv.log(f"[INFO teaclave_function::echo] {message}")
    return message


class BuiltinExecutor:
    name = "builtin"

    def __init__(self) -> None:
        self._functions = {"builtin-echo": _echo}

    def run(self, invocation: Invocation) -> str:
        fn = self._functions.get(invocation.function.name)
        if fn is None:
            raise FunctionError("Function not found.")
        return fn(invocation)
