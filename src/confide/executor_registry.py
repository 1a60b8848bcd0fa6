"""The executor registry: one row per kind of executor, and every name it goes by.

Teaclave names each executor twice (spec §3.6): a function is registered with
an ``executor_type`` (``builtin``, ``python``, ``wamr``) and a task is created
for an ``executor`` (``builtin``, ``mesapy``, ``wamr``). Only the pairs of one
row run; any other pair ends the task with Teaclave's Debug names of both,
``function not available: (Python, Builtin)`` (spec §5.6).

This table is the only place those names are written: management validates
functions and tasks against it (its error texts, ``services/management/_explain.py``,
list the valid names from here), the worker picks its executor by it, and the
CLI's help lists them. It sits below management, the
worker and the executors, so it names no implementation: each row's factory
is bound by ``confide.executors.EXECUTOR_FACTORIES`` (keyed by the row's
``executor``; a test checks that every row has one). Imports nothing of confide.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BUILTIN",
    "EXECUTOR_KINDS",
    "MESAPY",
    "WAMR",
    "ExecutorKind",
    "executor_kind",
    "executor_names",
    "function_not_available",
    "function_types",
    "is_function_type",
    "kind_for_function_type",
]


@dataclass(frozen=True)
class ExecutorKind:
    """One executor: the task's name for it, the function type it runs, their display names."""

    executor: str  # CreateTask.executor, and the Executor's ``name``
    function_type: str  # RegisterFunction.executor_type of the functions it runs
    executor_display: str  # Teaclave's Debug name of the executor
    function_type_display: str  # Teaclave's Debug name of the function type


BUILTIN = ExecutorKind("builtin", "builtin", "Builtin", "Builtin")
MESAPY = ExecutorKind("mesapy", "python", "MesaPy", "Python")
WAMR = ExecutorKind("wamr", "wamr", "WAMR", "WAMR")

#: Every executor, in the order help texts and error messages list them.
EXECUTOR_KINDS: tuple[ExecutorKind, ...] = (BUILTIN, MESAPY, WAMR)

_BY_EXECUTOR = {k.executor: k for k in EXECUTOR_KINDS}
_BY_FUNCTION_TYPE = {k.function_type: k for k in EXECUTOR_KINDS}


def executor_kind(executor: str) -> ExecutorKind | None:
    """The row of the task executor name ``executor``, or None when there is none."""
    return _BY_EXECUTOR.get(executor)


def kind_for_function_type(function_type: str) -> ExecutorKind | None:
    """The row whose executor runs functions of ``function_type``, or None."""
    return _BY_FUNCTION_TYPE.get(function_type)


def is_function_type(function_type: str) -> bool:
    """Whether a function may be registered with this ``executor_type``."""
    return function_type in _BY_FUNCTION_TYPE


def executor_names() -> tuple[str, ...]:
    """The task executor names, in registry order."""
    return tuple(k.executor for k in EXECUTOR_KINDS)


def function_types() -> tuple[str, ...]:
    """The function executor types, in registry order."""
    return tuple(k.function_type for k in EXECUTOR_KINDS)


def function_not_available(function_type: str, executor: str) -> str:
    """Teaclave's result text for a pair that does not run (spec §5.6), e.g.
    ``function not available: (Builtin, MesaPy)``; unknown names as they are."""
    kind = _BY_FUNCTION_TYPE.get(function_type)
    runner = _BY_EXECUTOR.get(executor)
    type_name = kind.function_type_display if kind is not None else function_type
    executor_name = runner.executor_display if runner is not None else executor
    return f"function not available: ({type_name}, {executor_name})"
