"""Executors: run a function given its invocation (builtin, Python, WebAssembly)."""

from ._args import flatten_arguments
from ._base import (
    CancelledError,
    CorruptedInput,
    Executor,
    ExecutorError,
    FunctionError,
    FunctionSpec,
    InvalidInputName,
    InvalidOutputName,
    Invocation,
    TaskIO,
)

__all__ = [
    "CancelledError",
    "CorruptedInput",
    "Executor",
    "ExecutorError",
    "FunctionError",
    "FunctionSpec",
    "InvalidInputName",
    "InvalidOutputName",
    "Invocation",
    "TaskIO",
    "flatten_arguments",
]
