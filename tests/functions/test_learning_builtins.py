"""Golden tests for gbdt, logistic regression and PCA against Teaclave's vectors."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from confide.functions import FunctionContext
from confide.functions._gbdt import train as gbdt_train
from confide.invocation import FunctionError

from ._fakes import MemoryTaskIO
from .conftest import RunBuiltin

Vec = Callable[[str], bytes]

GBDT_ARGS = {
    "feature_size": 4,
    "max_depth": 4,
    "iterations": 100,
    "shrinkage": 0.1,
    "feature_sample_ratio": 1.0,
    "data_sample_ratio": 1.0,
    "min_leaf_size": 1,
    "loss": "LAD",
    "training_optimization_level": 2,
}
LR_ARGS = {"alg_alpha": 0.3, "alg_iters": 100, "feature_size": 30}


# --- gbdt ----------------------------------------------------------------------------------


def test_gbdt_predict_reproduces_teaclave_result_exactly(
    run_builtin: RunBuiltin, fvec: Vec
) -> None:
    inputs = {
        "model_file": fvec("gbdt_prediction/model.txt"),
        "data_file": fvec("gbdt_prediction/test_data.txt"),
    }
    run = run_builtin("builtin-gbdt-predict", {}, inputs, ("result_file",))
    assert run.result == "Predict result has 30 lines of data."
    assert run.outputs["result_file"] == fvec("gbdt_prediction/expected_result.txt")


def test_gbdt_train_reproduces_teaclave_model_byte_for_byte(
    run_builtin: RunBuiltin, fvec: Vec
) -> None:
    inputs = {"training_data": fvec("gbdt_training/train.txt")}
    run = run_builtin("builtin-gbdt-train", GBDT_ARGS, inputs, ("trained_model",))
    assert run.result == "Trained 120 lines of data."
    assert run.outputs["trained_model"] == fvec("gbdt_training/expected_model.txt")


def _train_predict(run_builtin: RunBuiltin, fvec: Vec, args: dict[str, object]) -> np.ndarray:
    train = fvec("gbdt_training/train.txt")
    model = run_builtin("builtin-gbdt-train", args, {"training_data": train}, ("trained_model",))
    features = b"\n".join(b",".join(line.split(b",")[:4]) for line in train.splitlines())
    pred = run_builtin(
        "builtin-gbdt-predict",
        {},
        {"model_file": model.outputs["trained_model"], "data_file": features},
        ("result_file",),
    )
    return np.array([float(v) for v in pred.outputs["result_file"].split()])


def test_gbdt_train_squared_error_model_is_accepted_by_predict(
    run_builtin: RunBuiltin, fvec: Vec
) -> None:
    predictions = _train_predict(run_builtin, fvec, {**GBDT_ARGS, "loss": "SquaredError"})
    labels = np.array(
        [float(line.split(b",")[-1]) for line in fvec("gbdt_training/train.txt").split()]
    )
    assert np.abs(predictions - labels).max() < 0.5


def test_gbdt_log_likelyhood_predicts_probabilities(run_builtin: RunBuiltin) -> None:
    rows = [f"{x / 10},{1 if x >= 50 else -1}" for x in range(100)]
    data = "\n".join(rows).encode()
    args = {**GBDT_ARGS, "feature_size": 1, "loss": "LogLikelyhood", "iterations": 20}
    model = run_builtin("builtin-gbdt-train", args, {"training_data": data}, ("trained_model",))
    pred = run_builtin(
        "builtin-gbdt-predict",
        {},
        {"model_file": model.outputs["trained_model"], "data_file": b"0.5\n9.5\n"},
        ("result_file",),
    )
    low, high = (float(v) for v in pred.outputs["result_file"].split())
    assert 0.0 < low < 0.5 < high < 1.0


def test_gbdt_log_likelyhood_on_non_binary_labels_gives_model_predict_refuses(
    run_builtin: RunBuiltin, fvec: Vec
) -> None:
    # As in gbdt-rs: the bias is ln(negative) = NaN, serialised as null.
    args = {**GBDT_ARGS, "loss": "LogLikelyhood", "iterations": 2}
    model = run_builtin(
        "builtin-gbdt-train",
        args,
        {"training_data": fvec("gbdt_training/train.txt")},
        ("trained_model",),
    )
    assert json.loads(model.outputs["trained_model"])["bias"] is None
    with pytest.raises(FunctionError, match=r"^Invalid model: "):
        run_builtin(
            "builtin-gbdt-predict",
            {},
            {"model_file": model.outputs["trained_model"], "data_file": b"1,2,3,4\n"},
            ("result_file",),
        )


def test_gbdt_trained_model_fits_training_labels_within_tolerance(
    run_builtin: RunBuiltin, fvec: Vec
) -> None:
    labels = np.array(
        [float(line.split(b",")[-1]) for line in fvec("gbdt_training/train.txt").split()]
    )
    predictions = _train_predict(run_builtin, fvec, GBDT_ARGS)
    assert np.abs(predictions - labels).max() < 0.5  # LAD on iris: every sample on its class


def test_gbdt_sampling_uses_injected_rng(fvec: Vec) -> None:
    args = {**GBDT_ARGS, "data_sample_ratio": 0.5, "feature_sample_ratio": 0.5, "iterations": 5}
    models = []
    for _ in range(2):
        io = MemoryTaskIO({"training_data": fvec("gbdt_training/train.txt")}, ["trained_model"])
        gbdt_train(FunctionContext(args, io), rng=random.Random(7))
        models.append(io.outputs["trained_model"])
    assert models[0] == models[1]
    assert json.loads(models[0])["conf"]["data_sample_ratio"] == 0.5


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"1,2,3,4,5\n\n", "Empty line"),
        (b"1,2,3,4\n", "Data format error: column len = 4, expected = 5"),
        (b"1,2,x,4,5\n", "invalid float literal"),
        (b"1, 2,3,4,5\n", "invalid float literal"),
    ],
)
def test_gbdt_train_data_errors(run_builtin: RunBuiltin, data: bytes, reason: str) -> None:
    with pytest.raises(FunctionError) as info:
        run_builtin("builtin-gbdt-train", GBDT_ARGS, {"training_data": data}, ("trained_model",))
    assert info.value.reason == reason


@pytest.mark.parametrize(
    "bad",
    [
        {"shrinkage": "0.1"},
        {"max_depth": 2**32},
        {"feature_size": 4.0},
        {"training_optimization_level": 256},
        {"loss": 1},
    ],
)
def test_gbdt_train_rejects_mistyped_arguments(
    run_builtin: RunBuiltin, bad: dict[str, object]
) -> None:
    with pytest.raises(FunctionError, match=r"^Cannot deserialize arguments$"):
        run_builtin("builtin-gbdt-train", {**GBDT_ARGS, **bad}, {"training_data": b"1,2,3,4,5\n"})


def test_gbdt_train_rejects_iterations_over_cap(run_builtin: RunBuiltin) -> None:
    with pytest.raises(FunctionError, match=r"^iterations too large"):
        run_builtin(
            "builtin-gbdt-train",
            {**GBDT_ARGS, "iterations": 10_001},
            {"training_data": b"1,2,3,4,5\n"},
        )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"1,2,3,4\n   \n", "Empty line"),
        (b"1,,3,4\n", "Empty feature"),
        (b"1,2\n", "sample doesn't have the feature"),
    ],
)
def test_gbdt_predict_data_errors(
    run_builtin: RunBuiltin, fvec: Vec, data: bytes, reason: str
) -> None:
    inputs = {"model_file": fvec("gbdt_prediction/model.txt"), "data_file": data}
    with pytest.raises(FunctionError) as info:
        run_builtin("builtin-gbdt-predict", {}, inputs, ("result_file",))
    assert info.value.reason == reason


def test_gbdt_predict_trims_fields(run_builtin: RunBuiltin, fvec: Vec) -> None:
    inputs = {
        "model_file": fvec("gbdt_prediction/model.txt"),
        "data_file": b" 7.7 , 2.6,6.9 ,2.3\n",
    }
    run = run_builtin("builtin-gbdt-predict", {}, inputs, ("result_file",))
    assert run.outputs["result_file"] == b"2.0000000000\n"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda m: m.pop("bias"),
        lambda m: m["conf"].update(loss="Bogus"),
        lambda m: m["conf"].update(iterations=99),
        lambda m: m["trees"][0]["tree"]["tree"][0].update(left=10_000),
        lambda m: m["trees"][0]["tree"]["tree"][0]["value"].update(is_leaf="no"),
    ],
)
def test_gbdt_predict_rejects_mutated_models(
    run_builtin: RunBuiltin, fvec: Vec, mutate: Callable[[dict[str, Any]], object]
) -> None:
    model = json.loads(fvec("gbdt_prediction/model.txt"))
    mutate(model)
    inputs = {"model_file": json.dumps(model).encode(), "data_file": b"1,2,3,4\n"}
    with pytest.raises(FunctionError, match=r"^Invalid model: "):
        run_builtin("builtin-gbdt-predict", {}, inputs, ("result_file",))


def test_gbdt_predict_rejects_cyclic_tree(run_builtin: RunBuiltin, fvec: Vec) -> None:
    model = json.loads(fvec("gbdt_prediction/model.txt"))
    model["trees"][0]["tree"]["tree"][2].update(left=0)  # node 2 points back to the root
    inputs = {"model_file": json.dumps(model).encode(), "data_file": b"7.7,2.6,6.9,1.0\n"}
    with pytest.raises(FunctionError, match=r"^Invalid model: "):
        run_builtin("builtin-gbdt-predict", {}, inputs, ("result_file",))


# --- logistic regression -------------------------------------------------------------------


def test_logistic_regression_train_reproduces_teaclave_model(
    run_builtin: RunBuiltin, fvec: Vec
) -> None:
    inputs = {"training_data": fvec("logistic_regression_training/train.txt")}
    run = run_builtin("builtin-logistic-regression-train", LR_ARGS, inputs, ("model_file",))
    assert run.result == "Trained 100 lines of data."
    assert run.outputs["model_file"] == fvec("logistic_regression_training/expected_model.txt")


def test_logistic_regression_predict_reproduces_teaclave_result(
    run_builtin: RunBuiltin, fvec: Vec
) -> None:
    inputs = {
        "model_file": fvec("logistic_regression_prediction/model.txt"),
        "data_file": fvec("logistic_regression_prediction/predict_input.txt"),
    }
    run = run_builtin("builtin-logistic-regression-predict", {}, inputs, ("result_file",))
    assert run.result == "Predicted 5 lines of data."
    assert run.outputs["result_file"] == fvec("logistic_regression_prediction/expected_result.txt")


def test_logistic_regression_predict_rejects_wrong_column_count(
    run_builtin: RunBuiltin, fvec: Vec
) -> None:
    inputs = {
        "model_file": fvec("logistic_regression_prediction/model.txt"),
        "data_file": b"1,2,3\n",
    }
    with pytest.raises(FunctionError, match=r"^Data format error: column len = 3, expected = 30$"):
        run_builtin("builtin-logistic-regression-predict", {}, inputs, ("result_file",))


def test_logistic_regression_predict_rejects_untrained_model(run_builtin: RunBuiltin) -> None:
    inputs = {"model_file": b'{"alpha":0.3,"iters":100,"parameters":null}', "data_file": b""}
    with pytest.raises(FunctionError, match=r"^Model parameter is None$"):
        run_builtin("builtin-logistic-regression-predict", {}, inputs, ("result_file",))


def test_logistic_regression_non_positive_alpha_is_clean_error(run_builtin: RunBuiltin) -> None:
    with pytest.raises(FunctionError, match=r"alpha"):
        run_builtin(
            "builtin-logistic-regression-train",
            {**LR_ARGS, "alg_alpha": 0},
            {"training_data": b""},
            ("model_file",),
        )


@pytest.mark.parametrize("bad", [{"alg_alpha": "0.3"}, {"alg_iters": -1}, {"feature_size": None}])
def test_logistic_regression_rejects_mistyped_arguments(
    run_builtin: RunBuiltin, bad: dict[str, object]
) -> None:
    with pytest.raises(FunctionError, match=r"^Cannot deserialize arguments$"):
        run_builtin("builtin-logistic-regression-train", {**LR_ARGS, **bad})


# --- PCA -----------------------------------------------------------------------------------

PCA_ARGS = {"n": 2, "center": True, "feature_size": 4}


def _matrix(text: bytes) -> np.ndarray:
    return np.array([[float(v) for v in line.split(",")] for line in text.decode().splitlines()])


def test_pca_matches_teaclave_up_to_component_sign(run_builtin: RunBuiltin, fvec: Vec) -> None:
    inputs = {"input_data": fvec("princopal_components_analysis/input.txt")}
    run = run_builtin("builtin_principal_components_analysis", PCA_ARGS, inputs, ("output_data",))
    assert run.result == "transform 90 rows * 2 cols lines of data."
    got = _matrix(run.outputs["output_data"])
    expected = _matrix(fvec("princopal_components_analysis/expected_result.txt"))
    assert got.shape == expected.shape == (90, 2)
    for j in range(2):
        sign = np.sign(got[:, j] @ expected[:, j])
        np.testing.assert_allclose(sign * got[:, j], expected[:, j], rtol=0, atol=1e-12)


def test_pca_rejects_more_components_than_features(run_builtin: RunBuiltin, fvec: Vec) -> None:
    inputs = {"input_data": fvec("princopal_components_analysis/input.txt")}
    with pytest.raises(FunctionError, match=r"larger number of columns than n"):
        run_builtin(
            "builtin_principal_components_analysis", {**PCA_ARGS, "n": 5}, inputs, ("output_data",)
        )


def test_pca_rejects_string_center(run_builtin: RunBuiltin) -> None:
    with pytest.raises(FunctionError, match=r"^Cannot deserialize arguments$"):
        run_builtin("builtin_principal_components_analysis", {**PCA_ARGS, "center": "true"})
