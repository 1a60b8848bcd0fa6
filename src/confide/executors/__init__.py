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
from ._caps import CapExceeded, WrappedWriter, apply_caps
from ._factories import EXECUTOR_FACTORIES, ExecutorFactory, ExecutorSettings, build_executors

__all__ = [
    "EXECUTOR_FACTORIES",
    "CancelledError",
    "CapExceeded",
    "CorruptedInput",
    "Executor",
    "ExecutorError",
    "ExecutorFactory",
    "ExecutorSettings",
    "FunctionError",
    "FunctionSpec",
    "InvalidInputName",
    "InvalidOutputName",
    "Invocation",
    "TaskIO",
    "WrappedWriter",
    "apply_caps",
    "build_executors",
    "flatten_arguments",
]
