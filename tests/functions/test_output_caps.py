"""Builtins under the task's output and log caps (Limits.max_output_*, max_log_*).

``builtin-ordered-set-intersect`` writes one byte per input line to each
output, so its outputs grow with its inputs: at the cap they are kept, at
cap + 1 the task fails naming the cap and the refused bytes are never written.
"""

from __future__ import annotations

import pytest

from confide.config import Limits
from confide.executors import CapExceeded

from .conftest import RunBuiltin

NAME = "builtin-ordered-set-intersect"
OUTPUTS = ("output_result1", "output_result2")


def _items(n: int) -> bytes:
    return b"".join(b"%04x\n" % i for i in range(n))


def _intersect(run_builtin: RunBuiltin, n: int, limits: Limits) -> dict[str, bytes]:
    inputs = {"input_data1": _items(n), "input_data2": _items(n)}
    run = run_builtin(NAME, {"order": "ascending"}, inputs, OUTPUTS, limits=limits)
    assert run.result == f"{n} common items"
    return run.outputs


def test_builtin_output_at_the_per_file_cap_is_kept(run_builtin: RunBuiltin) -> None:
    outputs = _intersect(run_builtin, 100, Limits(max_output_file_bytes=100))
    assert outputs == {name: b"1" * 100 for name in OUTPUTS}


def test_builtin_output_past_the_per_file_cap_fails_naming_it(run_builtin: RunBuiltin) -> None:
    with pytest.raises(CapExceeded) as info:
        _intersect(run_builtin, 101, Limits(max_output_file_bytes=100))
    assert info.value.reason == (
        "Runtime Error: output 'output_result1' exceeds the 100-byte per-file output cap "
        "(limits.max_output_file_bytes)")


def test_builtin_outputs_at_the_per_task_cap_are_kept(run_builtin: RunBuiltin) -> None:
    assert len(_intersect(run_builtin, 100, Limits(max_output_bytes=200))) == 2


def test_builtin_outputs_past_the_per_task_cap_fail_naming_it(run_builtin: RunBuiltin) -> None:
    with pytest.raises(CapExceeded) as info:
        _intersect(run_builtin, 100, Limits(max_output_bytes=199))
    assert info.value.reason == (
        "Runtime Error: outputs exceed the 199-byte per-task output cap "
        "(limits.max_output_bytes)")


def test_builtin_log_at_the_byte_cap_is_kept_and_cap_plus_one_fails(
    run_builtin: RunBuiltin,
) -> None:
    line = "[INFO teaclave_function::echo] " + "m" * 40
    size = len(line.encode())
    args = {"message": "m" * 40, "save_log": "true"}
    assert run_builtin("builtin-echo", args, limits=Limits(max_log_bytes=size)).log == [line]
    with pytest.raises(CapExceeded) as info:
        run_builtin("builtin-echo", args, limits=Limits(max_log_bytes=size - 1))
    assert info.value.reason == (
        f"Runtime Error: log exceeds the {size - 1}-byte log cap (limits.max_log_bytes)")
