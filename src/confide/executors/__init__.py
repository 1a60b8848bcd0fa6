"""Executors: run a function given its invocation (builtin, Python, WebAssembly)."""

from ..invocation import (
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
from ._args import flatten_arguments

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
