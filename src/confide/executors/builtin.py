"""The ``builtin`` executor: dispatch to confide's builtin functions by registered name."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from confide.config import Limits
from confide.executor_registry import BUILTIN
from confide.functions import BUILTINS, Builtin, FunctionContext
from confide.invocation import (
    CancelledError,
    ExecutorError,
    FunctionError,
    Invocation,
)

__all__ = ["FUNCTION_NOT_FOUND", "BuiltinExecutor"]

FUNCTION_NOT_FOUND = "Function not found."


class BuiltinExecutor:
    """Runs builtin functions (spec §5.5) for the worker.

    The worker has already checked that the function's executor_type pairs
    with this executor. Log capture (``save_log == "true"``, a JSON string)
    forwards only the function's own lines (Q21) to ``invocation.log``; the
    worker's sink enforces the log caps and outputs are capped streams
    (:func:`~confide.executors.apply_caps`).
    """

    name = BUILTIN.executor

    def __init__(
        self, limits: Limits | None = None, builtins: Mapping[str, Builtin] = BUILTINS
    ) -> None:
        self._limits = limits if limits is not None else Limits()
        self._builtins = builtins

    def _log_sink(self, invocation: Invocation) -> Callable[[str], None] | None:
        if invocation.arguments.get("save_log") != "true":
            return None
        return invocation.log

    def run(self, invocation: Invocation) -> str:
        """Run the builtin named ``invocation.function.name``.

        Raises:
            FunctionError: ``Function not found.``, or the builtin's reason.
            CancelledError: ``invocation.cancel`` was set.
        """
        builtin = self._builtins.get(invocation.function.name)
        if builtin is None:
            raise FunctionError(FUNCTION_NOT_FOUND)
        if invocation.cancel.is_set():
            raise CancelledError("invocation cancelled")
        ctx = FunctionContext(
            arguments=invocation.arguments,
            io=invocation.io,
            limits=self._limits,
            module=builtin.module,
            log_sink=self._log_sink(invocation),
            cancel=invocation.cancel,
        )
        try:
            return builtin.run(ctx)
        except ExecutorError:
            raise
        except Exception as e:  # a builtin bug must not kill the worker (Q22)
            raise FunctionError(f"Builtin function failed: {type(e).__name__}") from e
