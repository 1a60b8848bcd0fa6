"""confide's builtin functions: Teaclave's 13 builtins, re-implemented in Python.

Each builtin is pure computation over its arguments and the plaintext files the
worker hands it through :class:`~confide.invocation.TaskIO`; it has no
network and no disk access of its own. Errors end the task Finished+Err through
:class:`~confide.invocation.FunctionError` with Teaclave's reason texts.
"""

from ._context import FunctionContext, LogSink
from ._registry import BUILTINS, Builtin

__all__ = ["BUILTINS", "Builtin", "FunctionContext", "LogSink"]
