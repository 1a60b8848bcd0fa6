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
from ._caps import CapExceeded, apply_caps

__all__ = [
    "CancelledError",
    "CapExceeded",
    "CorruptedInput",
    "Executor",
    "ExecutorError",
    "FunctionError",
    "FunctionSpec",
    "InvalidInputName",
    "InvalidOutputName",
    "Invocation",
    "TaskIO",
    "apply_caps",
    "flatten_arguments",
]
