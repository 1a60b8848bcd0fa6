"""Re-export of :mod:`confide.invocation`, where the executor contract now lives.

Kept only so that modules written against the old place (``executors/_sandbox``,
``executors/python.py`` and their tests) keep importing while they are edited
elsewhere; new code imports :mod:`confide.invocation`. To remove once nothing
imports ``confide.executors._base`` any more.
"""

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
]
