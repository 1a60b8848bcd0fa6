"""``builtin-gbdt-train`` and ``builtin-gbdt-predict`` (gbdt-rs semantics)."""

from __future__ import annotations

import random

import numpy as np

from confide.invocation import FunctionError

from ._args import Field, Kind, decode_arguments
from ._context import FunctionContext
from ._gbdt_model import LOSS_FROM_ARGUMENT, GbdtConfig, load_model
from ._gbdt_train import fit
from ._rust import fmt_fixed, parse_f32, rust_lines, rust_trim
from ._table import parse_table

__all__ = ["PREDICT_NAME", "TRAIN_NAME", "predict", "train"]

TRAIN_NAME = "builtin-gbdt-train"
PREDICT_NAME = "builtin-gbdt-predict"

_TRAIN_FIELDS = (
    Field("feature_size", Kind.USIZE),
    Field("max_depth", Kind.U32),
    Field("iterations", Kind.USIZE),
    Field("shrinkage", Kind.F32),
    Field("feature_sample_ratio", Kind.F64),
    Field("data_sample_ratio", Kind.F64),
    Field("min_leaf_size", Kind.USIZE),
    Field("loss", Kind.STR),
    Field("training_optimization_level", Kind.U8),
)
_CANCEL_EVERY = 4096


def train(ctx: FunctionContext, rng: random.Random | None = None) -> str:
    """Train on ``training_data``; write the gbdt-rs JSON model to ``trained_model``.

    Args:
        ctx: the invocation context.
        rng: randomness for data/feature sampling (ratios below 1.0); a fresh
            ``random.Random()`` when ``None``.

    Raises:
        FunctionError: ``Cannot deserialize arguments``, ``Empty line``,
            ``Data format error: …``, float parse errors, NaN data (Teaclave
            panics), caps.
    """
    args = decode_arguments(ctx.arguments, _TRAIN_FIELDS)
    limits = ctx.limits
    if args["feature_size"] > limits.builtin_max_feature_size:
        raise FunctionError(f"feature_size too large: {args['feature_size']}")
    if args["iterations"] > limits.builtin_max_gbdt_iterations:
        raise FunctionError(f"iterations too large: {args['iterations']}")
    if args["max_depth"] > limits.builtin_max_gbdt_depth:
        raise FunctionError(f"max_depth too large: {args['max_depth']}")
    ctx.debug("start traning...")
    feature_size: int = args["feature_size"]
    ctx.debug("open input...")
    rows = parse_table(ctx, ctx.read_input("training_data"), feature_size + 1, parse_f32)
    table = np.array(rows, dtype=np.float32).reshape(len(rows), feature_size + 1)
    if np.isnan(table).any():
        raise FunctionError("Invalid training data: NaN value")
    conf = GbdtConfig(
        feature_size=feature_size,
        max_depth=args["max_depth"],
        iterations=args["iterations"],
        shrinkage=args["shrinkage"],
        feature_sample_ratio=args["feature_sample_ratio"],
        data_sample_ratio=args["data_sample_ratio"],
        min_leaf_size=args["min_leaf_size"],
        loss=LOSS_FROM_ARGUMENT.get(args["loss"], "SquaredError"),
        debug=False,
        initial_guess_enabled=False,
        training_optimization_level=min(args["training_optimization_level"], 2),
    )
    model = fit(
        conf,
        np.ascontiguousarray(table[:, :feature_size]),
        np.ascontiguousarray(table[:, feature_size]),
        rng=rng if rng is not None else random.Random(),  # noqa: S311 - sampling, not secrets
        check_cancel=ctx.check_cancel,
    )
    ctx.write_output("trained_model", model.to_json().encode("utf-8"))
    return f"Trained {len(rows)} lines of data."


def _parse_test_data(ctx: FunctionContext, data: bytes) -> list[list[np.float32]]:
    rows: list[list[np.float32]] = []
    for line in rust_lines(data):
        trimmed = rust_trim(line)
        if not trimmed:
            raise FunctionError("Empty line")
        row = []
        for field in trimmed.split(","):
            value = rust_trim(field)
            if not value:
                raise FunctionError("Empty feature")
            row.append(parse_f32(value))
        rows.append(row)
        if len(rows) > ctx.limits.builtin_max_rows:
            raise FunctionError(f"Too many data lines: more than {ctx.limits.builtin_max_rows}")
        if len(rows) % _CANCEL_EVERY == 0:
            ctx.check_cancel()
    return rows


def predict(ctx: FunctionContext) -> str:
    """Predict ``data_file`` with ``model_file``; write ``{:.10}`` lines to ``result_file``.

    Rows may have different lengths, as in gbdt-rs; a row lacking a feature a
    tree tests is an error.

    Raises:
        FunctionError: ``Invalid model: …``, ``Empty line``, ``Empty feature``,
            float parse errors, ``sample doesn't have the feature``.
    """
    model = load_model(ctx.read_input("model_file"), ctx.limits.builtin_max_gbdt_nodes)
    rows = _parse_test_data(ctx, ctx.read_input("data_file"))
    width = max((len(r) for r in rows), default=0)
    # Short rows are padded with NaN; a NaN is only read if a tree tests a
    # feature the row lacks, which is rejected below.
    features = np.full((len(rows), width), np.nan, dtype=np.float32)
    for i, row in enumerate(rows):
        features[i, : len(row)] = row
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    predictions = model.predict(features, lengths)
    text = "".join(fmt_fixed(float(v), 10) + "\n" for v in predictions.tolist())
    ctx.write_output("result_file", text.encode("utf-8"))
    return f"Predict result has {len(rows)} lines of data."
