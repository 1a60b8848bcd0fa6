"""The executor registry is the one table of executor names (issue 11 item 2).

Management validates against it, the worker picks executors by it, error
messages are built from it, and no other module writes the names again.
"""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import pytest

from confide.config import Limits
from confide.execution import Stager, TaskRunner
from confide.executor_registry import (
    EXECUTOR_KINDS,
    MESAPY,
    executor_kind,
    executor_names,
    function_not_available,
    function_types,
    is_function_type,
    kind_for_function_type,
)
from confide.executors import (
    EXECUTOR_FACTORIES,
    ExecutorSettings,
    FunctionSpec,
    Invocation,
    build_executors,
)
from confide.services.management._explain import executor_error, executor_type_error
from confide.staged import StagedTask

SRC = Path(__file__).resolve().parents[2] / "src" / "confide"


def test_teaclave_pairs_are_the_rows() -> None:
    assert [(k.function_type, k.executor) for k in EXECUTOR_KINDS] == [
        ("builtin", "builtin"), ("python", "mesapy"), ("wamr", "wamr")]
    assert executor_names() == ("builtin", "mesapy", "wamr")
    assert function_types() == ("builtin", "python", "wamr")


def test_names_are_unique_per_column() -> None:
    for column in ("executor", "function_type", "executor_display", "function_type_display"):
        values = [getattr(k, column) for k in EXECUTOR_KINDS]
        assert len(set(values)) == len(values), column


def test_unknown_names_are_refused() -> None:
    assert executor_kind("python") is None  # a function type is not an executor name
    assert executor_kind("MesaPy") is None  # nor is a display name
    assert not is_function_type("mesapy")
    assert not is_function_type("")
    assert kind_for_function_type("mesapy") is None
    assert kind_for_function_type("python") == MESAPY


def test_every_row_has_a_factory_that_builds_an_executor_of_that_name() -> None:
    assert set(EXECUTOR_FACTORIES) == set(executor_names())
    executors = build_executors(ExecutorSettings(Limits()))
    try:
        assert {name: e.name for name, e in executors.items()} == {
            k.executor: k.executor for k in EXECUTOR_KINDS}
    finally:
        for e in executors.values():
            close = getattr(e, "close", None)
            if close is not None:
                close()


def test_unknown_names_are_answered_with_the_registrys_names() -> None:
    """Management's errors (services/management/_explain.py) list the registry's names."""
    unknown = executor_error("python")
    assert unknown.message == "Unsupported executor: python (executors: builtin, mesapy, wamr)"
    assert unknown.detail is not None and "executor mesapy" in unknown.detail.hint
    wrong_type = executor_type_error("mesapy")
    assert wrong_type.message == (
        "Invalid executor type: mesapy (executor types: builtin, python, wamr)")
    assert wrong_type.detail is not None and "executor type python" in wrong_type.detail.hint


@pytest.mark.parametrize(("function_type", "executor", "text"), [
    ("builtin", "mesapy", "function not available: (Builtin, MesaPy)"),
    ("python", "builtin", "function not available: (Python, Builtin)"),
    ("wamr", "mesapy", "function not available: (WAMR, MesaPy)"),
    ("cobol", "wamr", "function not available: (cobol, WAMR)"),  # unknown: as it is
])
def test_mismatch_text_uses_teaclave_debug_names(function_type: str, executor: str,
                                                 text: str) -> None:
    assert function_not_available(function_type, executor) == text


class _Recorder:
    name = MESAPY.executor

    def __init__(self) -> None:
        self.ran: list[FunctionSpec] = []

    def run(self, invocation: Invocation) -> str:
        self.ran.append(invocation.function)
        return "ran"


def _staged(executor_type: str, executor: str) -> StagedTask:
    return StagedTask(task_id="task-1", function_id="function-1", function_name="f",
                      function_payload=b"", executor_type=executor_type, executor=executor,
                      function_arguments="{}", inputs=(), outputs=())


@pytest.mark.parametrize(("executor_type", "executor"), [
    ("builtin", "mesapy"),  # a real executor, the wrong function type
    ("python", "wamr"),  # a pair of two real names that is no row
    ("python", "cobol"),  # no such executor at all
])
def test_worker_refuses_a_pair_that_is_no_registry_row(executor_type: str, executor: str) -> None:
    recorder = _Recorder()
    runner = TaskRunner({MESAPY.executor: recorder}, Stager(_NoTransport(), Limits()), Limits())
    outcome = runner.run(_staged(executor_type, executor), threading.Event())
    assert not outcome.ok
    assert outcome.reason == function_not_available(executor_type, executor)
    assert recorder.ran == []


def test_worker_runs_the_pair_of_a_row() -> None:
    recorder = _Recorder()
    runner = TaskRunner({MESAPY.executor: recorder}, Stager(_NoTransport(), Limits()), Limits())
    outcome = runner.run(_staged("python", "mesapy"), threading.Event())
    assert (outcome.ok, outcome.return_value) == (True, b"ran")
    assert [f.executor_type for f in recorder.ran] == ["python"]


class _NoTransport:
    def download(self, url: str, dst: object, *, max_bytes: int) -> int:
        raise AssertionError("nothing to download")

    def upload(self, url: str, src: object, size: int) -> None:
        raise AssertionError("nothing to upload")


def test_no_other_module_writes_an_executor_name_table() -> None:
    """``builtin`` doubles as an ordinary word (the demo's client calls); the others do not."""
    distinctive = {n for k in EXECUTOR_KINDS for n in (
        k.executor, k.function_type, k.executor_display, k.function_type_display)}
    distinctive -= {"builtin", "Builtin"}
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if "_gen" in path.parts or path.name == "executor_registry.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in distinctive:
                found.append(f"{path.relative_to(SRC)}:{node.lineno}: {node.value!r}")
    assert found == []
