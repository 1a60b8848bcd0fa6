"""``builtin_principal_components_analysis`` (rusty-machine ``PCA`` semantics)."""

from __future__ import annotations

import numpy as np

from confide.invocation import FunctionError

from ._args import Field, Kind, decode_arguments
from ._context import FunctionContext
from ._rust import fmt_debug_f64, parse_f64
from ._table import parse_table

__all__ = ["NAME", "run"]

NAME = "builtin_principal_components_analysis"

_FIELDS = (
    Field("n", Kind.USIZE),
    Field("center", Kind.BOOL),
    Field("feature_size", Kind.USIZE),
)


def _components(data: np.ndarray, n: int) -> np.ndarray:
    """First ``n`` right singular vectors (columns), largest singular value first.

    Each component's sign is fixed so that its largest-magnitude entry is
    positive; rulinalg's SVD may pick the opposite sign (spec: equal up to sign).
    """
    try:
        _, _, vt = np.linalg.svd(data, full_matrices=True)
    except np.linalg.LinAlgError as e:
        raise FunctionError(f"SVD failed: {e}") from e
    components = vt.T[:, :n].copy()
    for j in range(components.shape[1]):
        pivot = components[int(np.argmax(np.abs(components[:, j]))), j]
        if pivot < 0:
            components[:, j] = -components[:, j]
    return components


def run(ctx: FunctionContext) -> str:
    """Project ``input_data`` on its first ``n`` principal components into ``output_data``.

    Raises:
        FunctionError: ``Cannot deserialize arguments``, ``Empty line``,
            ``Data format error: …``, float parse errors, ``n`` larger than
            ``feature_size``, no data rows.
    """
    args = decode_arguments(ctx.arguments, _FIELDS)
    n: int = args["n"]
    feature_size: int = args["feature_size"]
    if feature_size > ctx.limits.builtin_max_feature_size:
        raise FunctionError(f"feature_size too large: {feature_size}")
    rows = parse_table(ctx, ctx.read_input("input_data"), feature_size + 1, parse_f64)
    if n > feature_size:
        raise FunctionError("Input data must have equal or larger number of columns than n")
    if not rows:
        raise FunctionError("No data to analyse")
    x = np.array([r[:feature_size] for r in rows], dtype=np.float64)
    with np.errstate(all="ignore"):
        data = x - x.mean(axis=0) if args["center"] else x
        if not np.isfinite(data).all():
            raise FunctionError("Input data must be finite")
        projected = data @ _components(data, n)
    lines = "".join(",".join(fmt_debug_f64(v) for v in row) + "\n" for row in projected.tolist())
    ctx.write_output("output_data", lines.encode("utf-8"))
    return f"transform {projected.shape[0]} rows * {projected.shape[1]} cols lines of data."
