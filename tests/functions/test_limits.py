"""Every builtin cap in Limits: the value at the cap passes, cap + 1 is refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from confide.config import Limits
from confide.executors.builtin import BuiltinExecutor
from confide.invocation import FunctionError

from .conftest import RunBuiltin

Vec = Callable[[str], bytes]

GBDT = {
    "feature_size": 1,
    "max_depth": 2,
    "iterations": 1,
    "shrinkage": 0.1,
    "feature_sample_ratio": 1.0,
    "data_sample_ratio": 1.0,
    "min_leaf_size": 1,
    "loss": "LAD",
    "training_optimization_level": 2,
}
LR = {"alg_alpha": 0.3, "alg_iters": 1, "feature_size": 1}
PCA = {"n": 1, "center": True, "feature_size": 1}

CASES: list[tuple[str, str, int, str, dict[str, Any], dict[str, bytes], tuple[str, ...]]] = [
    # (limit field, builtin, cap, argument set to cap / cap+1, base args, inputs, outputs)
    (
        "builtin_max_gbdt_iterations",
        "builtin-gbdt-train",
        3,
        "iterations",
        GBDT,
        {"training_data": b"1,1\n2,2\n"},
        ("trained_model",),
    ),
    (
        "builtin_max_gbdt_depth",
        "builtin-gbdt-train",
        3,
        "max_depth",
        GBDT,
        {"training_data": b"1,1\n2,2\n"},
        ("trained_model",),
    ),
    (
        "builtin_max_feature_size",
        "builtin-gbdt-train",
        1,
        "feature_size",
        GBDT,
        {"training_data": b"1,1\n"},
        ("trained_model",),
    ),
    (
        "builtin_max_lr_iterations",
        "builtin-logistic-regression-train",
        3,
        "alg_iters",
        LR,
        {"training_data": b"1,0\n2,1\n"},
        ("model_file",),
    ),
    (
        "builtin_max_feature_size",
        "builtin-logistic-regression-train",
        1,
        "feature_size",
        LR,
        {"training_data": b"1,0\n"},
        ("model_file",),
    ),
    (
        "builtin_max_feature_size",
        "builtin_principal_components_analysis",
        1,
        "feature_size",
        PCA,
        {"input_data": b"1,0\n2,0\n"},
        ("output_data",),
    ),
    (
        "builtin_max_parties",
        "builtin-private-join-and-compute",
        2,
        "num_user",
        {"num_user": 2},
        {"input_data0": b"a:1\n", "input_data1": b"a:1\n", "input_data2": b"a:1\n"},
        ("output_data0", "output_data1", "output_data2"),
    ),
]


@pytest.mark.parametrize(("limit", "name", "cap", "arg", "base", "inputs", "outputs"), CASES)
def test_argument_cap_is_enforced_at_cap_plus_one(
    run_builtin: RunBuiltin,
    limit: str,
    name: str,
    cap: int,
    arg: str,
    base: dict[str, Any],
    inputs: dict[str, bytes],
    outputs: tuple[str, ...],
) -> None:
    executor = BuiltinExecutor(Limits(**{limit: cap}))
    at_cap = {**base, arg: cap}
    run_builtin(name, at_cap, inputs, outputs, executor=executor)
    with pytest.raises(FunctionError, match=r"(too large|Too many)"):
        run_builtin(name, {**base, arg: cap + 1}, inputs, outputs, executor=executor)


def test_gbdt_model_node_cap(run_builtin: RunBuiltin, fvec: Vec) -> None:
    model = fvec("gbdt_prediction/model.txt")
    nodes = model.count(b'"is_leaf"')
    inputs = {"model_file": model, "data_file": b"1,2,3,4\n"}
    ok = BuiltinExecutor(Limits(builtin_max_gbdt_nodes=nodes))
    run_builtin("builtin-gbdt-predict", {}, inputs, ("result_file",), executor=ok)
    tight = BuiltinExecutor(Limits(builtin_max_gbdt_nodes=nodes - 1))
    with pytest.raises(FunctionError, match=r"^Invalid model: too many tree nodes$"):
        run_builtin("builtin-gbdt-predict", {}, inputs, ("result_file",), executor=tight)


def test_input_size_cap(run_builtin: RunBuiltin) -> None:
    inputs = {"password": b"12345678", "exposed_passwords": b"12345678"}
    ok = BuiltinExecutor(Limits(builtin_max_input_bytes=8))
    assert run_builtin("builtin-password-check", {}, inputs, executor=ok).result == "true"
    inputs["password"] += b"9"
    with pytest.raises(FunctionError, match=r"^Input file too large"):
        run_builtin("builtin-password-check", {}, inputs, executor=ok)


def test_row_cap(run_builtin: RunBuiltin) -> None:
    executor = BuiltinExecutor(Limits(builtin_max_rows=2))
    run_builtin(
        "builtin-logistic-regression-train",
        LR,
        {"training_data": b"1,0\n2,1\n"},
        ("model_file",),
        executor=executor,
    )
    with pytest.raises(FunctionError, match=r"^Too many data lines"):
        run_builtin(
            "builtin-logistic-regression-train",
            LR,
            {"training_data": b"1,0\n2,1\n3,1\n"},
            ("model_file",),
            executor=executor,
        )
