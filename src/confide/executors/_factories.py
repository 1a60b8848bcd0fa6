"""The executors behind the registry's rows (``confide.executor_registry``).

One factory per :class:`~confide.executor_registry.ExecutorKind`, keyed by its
task executor name. The implementations are imported when a worker builds
them, so importing ``confide.executors`` stays cheap (no wasmtime, numpy or
sandbox set-up for a process that only needs the names).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ..config import Limits
from ..executor_registry import BUILTIN, EXECUTOR_KINDS, MESAPY, WAMR
from ..invocation import Executor

__all__ = ["EXECUTOR_FACTORIES", "ExecutorFactory", "ExecutorSettings", "build_executors"]


@dataclass(frozen=True)
class ExecutorSettings:
    """What a worker configures in its executors."""

    limits: Limits
    python_prestart: int = 0  # Python sandboxes kept started ahead of their task


ExecutorFactory = Callable[[ExecutorSettings], Executor]


def _builtin(settings: ExecutorSettings) -> Executor:
    from .builtin import BuiltinExecutor

    return BuiltinExecutor(settings.limits)


def _python(settings: ExecutorSettings) -> Executor:
    from .python import PythonExecutor

    return PythonExecutor(limits=settings.limits, prestart=settings.python_prestart)


def _wasm(settings: ExecutorSettings) -> Executor:
    from .wasm import WasmExecutor

    return WasmExecutor(settings.limits)


#: The factory of each registry row, by its task executor name.
EXECUTOR_FACTORIES: Mapping[str, ExecutorFactory] = MappingProxyType({
    BUILTIN.executor: _builtin,
    MESAPY.executor: _python,
    WAMR.executor: _wasm,
})


def build_executors(settings: ExecutorSettings) -> dict[str, Executor]:
    """One executor per registry row, by task executor name.

    Raises:
        LookupError: a registry row has no factory (a programming error).
    """
    missing = [k.executor for k in EXECUTOR_KINDS if k.executor not in EXECUTOR_FACTORIES]
    if missing:
        raise LookupError(f"no executor factory for {', '.join(missing)}")
    return {k.executor: EXECUTOR_FACTORIES[k.executor](settings) for k in EXECUTOR_KINDS}
