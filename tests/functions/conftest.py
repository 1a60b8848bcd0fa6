"""Fixtures for the builtin-function tests."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from confide.config import Limits
from confide.executors import apply_caps
from confide.executors.builtin import BuiltinExecutor
from confide.invocation import FunctionSpec, Invocation

from ._fakes import MemoryTaskIO


def _vectors_root() -> Path:
    env = os.environ.get("CONFIDE_VECTORS")
    candidates = [Path(env)] if env else []
    candidates += [Path("/work/shared/vectors"), Path(__file__).parents[3] / "shared" / "vectors"]
    for path in candidates:
        if (path / "teaclave" / "functions").is_dir():
            return path
    pytest.fail("test vectors not found (set CONFIDE_VECTORS)")


@pytest.fixture(scope="session")
def fvec() -> Callable[[str], bytes]:
    """Read a file under ``vectors/teaclave/functions/``."""
    root = _vectors_root() / "teaclave" / "functions"
    return lambda rel: (root / rel).read_bytes()


class Run:
    """Result of one builtin run through :class:`BuiltinExecutor`."""

    def __init__(self, result: str, io: MemoryTaskIO, log: list[str]) -> None:
        self.result = result
        self.io = io
        self.outputs = io.outputs
        self.log = log


RunBuiltin = Callable[..., Run]


@pytest.fixture
def run_builtin() -> RunBuiltin:
    """``run_builtin(name, args, inputs={}, outputs=(), cancel=None, executor=None,
    limits=None) -> Run``: outputs and log capped by ``limits`` (default ``Limits()``)."""

    def run(
        name: str,
        arguments: dict[str, Any],
        inputs: dict[str, bytes] | None = None,
        outputs: tuple[str, ...] = (),
        cancel: threading.Event | None = None,
        executor: BuiltinExecutor | None = None,
        limits: Limits | None = None,
    ) -> Run:
        io = MemoryTaskIO(inputs, outputs)
        log: list[str] = []
        invocation = apply_caps(Invocation(
            task_id="task-1",
            function=FunctionSpec("fn-1", name, "builtin", b""),
            arguments=arguments,
            io=io,
            log=log.append,
            cancel=cancel or threading.Event(),
        ), limits or Limits())  # capped as the worker caps every invocation
        result = (executor or BuiltinExecutor()).run(invocation)
        return Run(result, io, log)

    return run
