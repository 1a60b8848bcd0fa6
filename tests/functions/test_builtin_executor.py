"""BuiltinExecutor: dispatch, save_log scope, cancellation, crash containment."""

from __future__ import annotations

import threading

import pytest

from confide.config import Limits
from confide.executors import CapExceeded
from confide.executors.builtin import BuiltinExecutor
from confide.functions import BUILTINS, Builtin, FunctionContext
from confide.invocation import CancelledError, FunctionError

from .conftest import RunBuiltin


def test_unknown_builtin_name_is_function_not_found(run_builtin: RunBuiltin) -> None:
    with pytest.raises(FunctionError, match=r"^Function not found\.$"):
        run_builtin("builtin-online-decrypt", {})  # Teaclave registers the underscore name


def test_save_log_needs_the_json_string_true(run_builtin: RunBuiltin) -> None:
    for value in (True, "false", "TRUE", 1):
        assert run_builtin("builtin-echo", {"message": "hi", "save_log": value}).log == []
    assert run_builtin("builtin-echo", {"message": "hi"}).log == []
    assert run_builtin("builtin-echo", {"message": "hi", "save_log": "true"}).log == [
        "[INFO teaclave_function::echo] hi"
    ]


def _chatty(lines: int) -> BuiltinExecutor:
    def chatty(ctx: FunctionContext) -> str:
        for i in range(lines):
            ctx.log(f"line {i}")
        return "done"

    return BuiltinExecutor(Limits(), {"chatty": Builtin("chatty", "chatty", chatty)})


def test_save_log_at_the_line_cap_is_kept(run_builtin: RunBuiltin) -> None:
    run = run_builtin("chatty", {"save_log": "true"}, executor=_chatty(3),
                      limits=Limits(max_log_lines=3))
    assert run.log == [f"[INFO teaclave_function::chatty] line {i}" for i in range(3)]


def test_save_log_past_the_line_cap_fails_the_task(run_builtin: RunBuiltin) -> None:
    with pytest.raises(CapExceeded) as info:
        run_builtin("chatty", {"save_log": "true"}, executor=_chatty(4),
                    limits=Limits(max_log_lines=3))
    assert info.value.reason == (
        "Runtime Error: log exceeds the 3-line log cap (limits.max_log_lines)")


def test_cancelled_before_start_raises_cancelled(run_builtin: RunBuiltin) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        run_builtin("builtin-echo", {"message": "hi"}, cancel=cancel)


def test_cancel_during_training_stops_between_iterations(run_builtin: RunBuiltin) -> None:
    cancel = threading.Event()
    seen: list[int] = []

    def stop_on_second_check(ctx: FunctionContext) -> str:
        original = BUILTINS["builtin-logistic-regression-train"].run

        class _Cancel(threading.Event):
            def is_set(self) -> bool:
                seen.append(1)
                return len(seen) > 2

        ctx.cancel = _Cancel()
        return original(ctx)

    executor = BuiltinExecutor(builtins={"lr": Builtin("lr", "lr", stop_on_second_check)})
    args = {"alg_alpha": 0.3, "alg_iters": 1000, "feature_size": 1}
    with pytest.raises(CancelledError):
        run_builtin(
            "lr",
            args,
            {"training_data": b"1,0\n2,1\n"},
            ("model_file",),
            cancel=cancel,
            executor=executor,
        )
    assert len(seen) == 3


def test_unexpected_exception_in_builtin_becomes_function_error(run_builtin: RunBuiltin) -> None:
    def broken(ctx: FunctionContext) -> str:
        raise ZeroDivisionError("boom")

    executor = BuiltinExecutor(builtins={"broken": Builtin("broken", "broken", broken)})
    with pytest.raises(FunctionError, match=r"^Builtin function failed: ZeroDivisionError$"):
        run_builtin("broken", {}, executor=executor)


def test_writing_unassigned_output_is_invalid_output_identifier(run_builtin: RunBuiltin) -> None:
    inputs = {"input_data1": b"0a\n", "input_data2": b"0a\n"}
    with pytest.raises(FunctionError, match=r"^Invalid output file identifier$"):
        run_builtin(
            "builtin-ordered-set-intersect", {"order": "ascending"}, inputs, ("output_result1",)
        )
