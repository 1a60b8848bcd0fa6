"""``builtin-logistic-regression-train`` / ``-predict`` (rusty-machine semantics).

Training is rusty-machine's ``LogisticRegressor<GradientDesc>``: an intercept
column of ones, initial parameters 0.5, and ``iters`` steps of batch gradient
descent ``w -= alpha · Xᵀ(sigmoid(Xw) - y)/m``, stopping early when the
cross-entropy cost stops changing (``|cost change| < 1e-20``). The float operation
order follows rulinalg, so the model is byte-identical to Teaclave's.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from confide.invocation import FunctionError

from ._args import Field, Kind, decode_arguments
from ._context import FunctionContext
from ._linalg import F64, exp_each, matvec, matvec_transposed, unrolled_sum
from ._rust import fmt_fixed, json_f64, parse_f64
from ._table import parse_table

__all__ = ["PREDICT_NAME", "TRAIN_NAME", "predict", "train"]

TRAIN_NAME = "builtin-logistic-regression-train"
PREDICT_NAME = "builtin-logistic-regression-predict"

_TRAIN_FIELDS = (
    Field("alg_alpha", Kind.F64),
    Field("alg_iters", Kind.USIZE),
    Field("feature_size", Kind.USIZE),
)
_LEARNING_EPS = 1e-20


def _with_intercept(rows: list[list[float]], columns: int) -> F64:
    x = np.ones((len(rows), columns + 1), dtype=np.float64)
    if rows:
        x[:, 1:] = np.array(rows, dtype=np.float64).reshape(len(rows), columns)
    return x


def _sigmoid(z: F64) -> F64:
    return 1.0 / (1.0 + exp_each(-z))


def _cross_entropy(outputs: F64, targets: F64) -> float:
    """rusty-machine ``CrossEntropyError::cost`` (used only for early stopping).

    numpy's ``log`` may differ from the C library's by 1 ulp; the cost only
    decides the ``|cost change| < 1e-20`` early stop, which such a difference can
    flip only when the cost is already stationary to the last bit.
    """
    if outputs.size == 0:
        return math.nan
    with np.errstate(all="ignore"):
        terms = targets * np.log(outputs) + (1.0 - targets) * np.log(1.0 - outputs)
        return float(-unrolled_sum(terms[:, None])[0] / outputs.size)


def _gradient_descent(ctx: FunctionContext, x: F64, y: F64, alpha: float, iters: int) -> F64:
    w = np.full(x.shape[1], 0.5)
    rows = float(x.shape[0])
    start_cost = 0.0
    with np.errstate(all="ignore"):
        for _ in range(iters):
            ctx.check_cancel()
            outputs = _sigmoid(matvec(x, w))
            cost = _cross_entropy(outputs, y)
            if abs(start_cost - cost) < _LEARNING_EPS:
                break
            grad = matvec_transposed(x, outputs - y) / rows
            w = w - grad * alpha
            start_cost = cost
    return w


def train(ctx: FunctionContext) -> str:
    """Train on ``training_data``; write the model JSON to ``model_file``.

    Raises:
        FunctionError: ``Cannot deserialize arguments``, ``Empty line``,
            ``Data format error: …``, float parse errors, a non-positive
            ``alg_alpha`` (Teaclave panics), caps.
    """
    args = decode_arguments(ctx.arguments, _TRAIN_FIELDS)
    alpha: float = args["alg_alpha"]
    iters: int = args["alg_iters"]
    feature_size: int = args["feature_size"]
    if feature_size > ctx.limits.builtin_max_feature_size:
        raise FunctionError(f"feature_size too large: {feature_size}")
    if iters > ctx.limits.builtin_max_lr_iterations:
        raise FunctionError(f"alg_iters too large: {iters}")
    if not alpha > 0:
        raise FunctionError("The step size (alpha) must be greater than 0.")
    rows = parse_table(ctx, ctx.read_input("training_data"), feature_size + 1, parse_f64)
    x = _with_intercept([r[:feature_size] for r in rows], feature_size)
    y = np.array([r[feature_size] for r in rows], dtype=np.float64)
    w = _gradient_descent(ctx, x, y, alpha, iters)
    params = ",".join(json_f64(v) for v in w.tolist())
    model = f'{{"alpha":{json_f64(alpha)},"iters":{iters},"parameters":[{params}]}}'
    ctx.write_output("model_file", model.encode("utf-8"))
    ctx.debug(f"trained {len(rows)} lines")
    return f"Trained {len(rows)} lines of data."


def _load_model(text: bytes) -> list[float]:
    try:
        model: Any = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise FunctionError(f"Invalid model: {e}") from e
    if not isinstance(model, dict):
        raise FunctionError("Invalid model: expected a JSON object")
    alpha, iters = model.get("alpha"), model.get("iters")
    if isinstance(alpha, bool) or not isinstance(alpha, int | float):
        raise FunctionError("Invalid model: alpha must be a number")
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 0:
        raise FunctionError("Invalid model: iters must be an unsigned integer")
    if "parameters" not in model:
        raise FunctionError("Invalid model: missing field `parameters`")
    params = model["parameters"]
    if params is None:
        raise FunctionError("Model parameter is None")
    if not isinstance(params, list) or not all(
        isinstance(p, int | float) and not isinstance(p, bool) for p in params
    ):
        raise FunctionError("Invalid model: parameters must be an array of numbers")
    if not params:
        raise FunctionError("Invalid model: parameters must not be empty")
    return [float(p) for p in params]


def predict(ctx: FunctionContext) -> str:
    """Score ``data_file`` rows with ``model_file``; write ``{:.4}`` lines to ``result_file``.

    Raises:
        FunctionError: model errors, ``Empty line``, ``Data format error: …``,
            float parse errors.
    """
    params = _load_model(ctx.read_input("model_file"))
    feature_size = len(params) - 1
    if feature_size > ctx.limits.builtin_max_feature_size:
        raise FunctionError(f"feature_size too large: {feature_size}")
    rows = parse_table(ctx, ctx.read_input("data_file"), feature_size, parse_f64)
    x = _with_intercept(rows, feature_size)
    with np.errstate(all="ignore"):
        scores = _sigmoid(matvec(x, np.array(params, dtype=np.float64)))
    lines = "".join(fmt_fixed(v, 4) + "\n" for v in scores.tolist())
    ctx.write_output("result_file", lines.encode("utf-8"))
    return f"Predicted {len(rows)} lines of data."
