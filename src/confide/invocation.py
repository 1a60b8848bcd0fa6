"""The contract between the execution worker, executors and functions.

The worker owns keys, ciphertext and the task's life cycle; an executor only
sees a :class:`Invocation`: the function, the final argument object and a
:class:`TaskIO` through which it opens plaintext inputs and creates outputs by
their *data name* (spec §5.1, §5.4). Nothing here does network or key I/O.

This module sits below both ``executors/`` and ``functions/`` (the builtins
raise :class:`FunctionError` and read a :class:`TaskIO`; the builtin executor
runs them), so neither package imports the other's contract and there is no
cycle between them. It imports nothing of confide.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

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


class ExecutorError(Exception):
    """Base of every error raised by an executor."""


class FunctionError(ExecutorError):
    """The function failed in a way that ends the task *Finished + Err*.

    ``reason`` is the exact ``result.Err.reason`` text a client sees (spec §5.6).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CancelledError(ExecutorError):
    """The invocation was cancelled (``Invocation.cancel`` was set)."""


class InvalidInputName(FunctionError):
    def __init__(self, name: str) -> None:
        super().__init__("Invalid input file identifier.")
        self.name = name


class InvalidOutputName(FunctionError):
    def __init__(self, name: str) -> None:
        super().__init__("Invalid output file identifier")
        self.name = name


class CorruptedInput(FunctionError):
    """An input failed its integrity check when it was opened (spec Q29)."""

    def __init__(self, name: str, local_path: str) -> None:
        super().__init__(f'Corrupted input file: "{local_path}"')
        self.name = name


class TaskIO(Protocol):
    """Plaintext file access for one task, by data name."""

    def input_names(self) -> Collection[str]: ...

    def output_names(self) -> Collection[str]: ...

    def open_input(self, name: str) -> BinaryIO:
        """Open an assigned input for reading.

        Raises:
            InvalidInputName: ``name`` is not an assigned input.
            CorruptedInput: the input failed its integrity check.
        """
        ...

    def create_output(self, name: str) -> BinaryIO:
        """Create (truncate) an assigned output for writing.

        Raises:
            InvalidOutputName: ``name`` is not an assigned output.
        """
        ...


@dataclass(frozen=True)
class FunctionSpec:
    """What the staged task says about the function (spec §5.1)."""

    function_id: str
    name: str
    executor_type: str  # "builtin" | "python" | "wamr"
    payload: bytes


@dataclass
class Invocation:
    """One run of a function inside a worker.

    The worker passes it through :func:`~confide.executors.apply_caps`: ``io``'s
    output streams and ``log`` then raise ``CapExceeded`` past the task's caps,
    which an executor lets through (the task fails naming the cap).
    """

    task_id: str
    function: FunctionSpec
    arguments: dict[str, Any]
    io: TaskIO
    # Called once per captured log line when save_log == "true" (spec §5.2).
    log: Callable[[str], None] | None = None
    cancel: threading.Event = field(default_factory=threading.Event)


class Executor(Protocol):
    """Runs an :class:`Invocation` and returns the function's result string.

    Raises:
        FunctionError: the task ends Finished + Err with ``reason``.
        CancelledError: ``invocation.cancel`` was set while running.
    """

    #: The task executor name this executor serves: "builtin", "mesapy" or "wamr".
    name: str

    def run(self, invocation: Invocation) -> str: ...
