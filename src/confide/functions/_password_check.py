"""``builtin-password-check``: is the password among the exposed passwords?"""

from __future__ import annotations

from confide.invocation import FunctionError

from ._context import FunctionContext
from ._rust import rust_lines, rust_trim

__all__ = ["NAME", "run"]

NAME = "builtin-password-check"


def run(ctx: FunctionContext) -> str:
    """Return ``"true"`` when the first line of ``password`` (trimmed) is listed.

    Arguments are ignored. Teaclave panics on an empty ``password`` file or on
    invalid UTF-8 (Q22); confide ends the task with a clear reason instead.

    Raises:
        FunctionError: empty password file, invalid UTF-8, missing input.
    """
    first = next(rust_lines(ctx.read_input("password")), None)
    if first is None:
        raise FunctionError("Empty password file")
    password = rust_trim(first)
    exposed = {rust_trim(line) for line in rust_lines(ctx.read_input("exposed_passwords"))}
    return "true" if password in exposed else "false"
