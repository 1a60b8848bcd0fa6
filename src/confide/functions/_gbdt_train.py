"""gbdt-rs training (``GBDT::fit``) in numpy, with gbdt-rs's float semantics.

Values are f32 (``ValueType``); impurity sums are f64 and accumulated left to
right in the order gbdt-rs visits the samples, so that split choices and leaf
values match. Samples with equal feature values are kept in input order (a
stable sort); gbdt-rs uses an unstable sort, which can change the rounding of
the f64 sums for SquaredError/LogLikelyhood when a feature has ties. For LAD
(targets ±1, weights 1) every sum is exact and the model is byte-identical.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ._gbdt_model import VALUE_TYPE_UNKNOWN, GbdtConfig, GbdtModel, Tree

__all__ = ["fit"]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
Idx = npt.NDArray[np.int64]

_F64_MAX = float(np.finfo(np.float64).max)
_ALMOST_EQUAL = 1.0e-5


def _seq_sum(values: F64) -> float:
    """Left-to-right f64 sum (Rust ``+=`` in a loop)."""
    if values.size == 0:
        return 0.0
    return float(np.add.accumulate(values)[-1])


def _almost_equal(a: F32 | np.float32, b: F32 | np.float32) -> npt.NDArray[np.bool_]:
    with np.errstate(all="ignore"):
        diff = np.abs(np.float32(a) - np.float32(b)).astype(np.float64)
    return np.asarray(diff < _ALMOST_EQUAL)


@dataclass
class _Cache:
    """gbdt-rs ``TrainingCache`` for one iteration."""

    feature_order: list[Idx]  # per feature: all samples sorted by value (stable)
    features: F32  # n x k
    target: F32
    s: F64  # target * weight
    ss: F64  # target * target * weight
    c: F64  # weight
    logit_c: F32
    residual_order: Idx
    residual: F32
    preds: F32


def _median_label(labels: F32, weights: F32) -> np.float32:
    """``fitness::weighted_label_median`` (including its ``i - 1 > 0`` quirk)."""
    order = np.argsort(labels, kind="stable")
    sorted_labels, sorted_weights = labels[order], weights[order]
    if not len(order):
        return np.float32(0.0)
    running = np.add.accumulate(sorted_weights, dtype=np.float32)
    above = running * np.float32(2.0) > running[-1]
    if not above.any():
        return np.float32(0.0)
    i = int(np.argmax(above))
    # gbdt-rs tests `i - 1 > 0` on a usize: i == 1 takes the label itself and
    # i == 0 (one sample) panics there; confide takes the label.
    if i >= 2:
        return np.float32((sorted_labels[i] + sorted_labels[i - 1]) / np.float32(2.0))
    return np.float32(sorted_labels[i])


def _label_average(labels: F32, weights: F32) -> np.float32:
    if not len(labels):
        return np.float32(np.nan)  # 0.0 / 0.0, as in gbdt-rs
    with np.errstate(all="ignore"):
        s = np.add.accumulate((labels * weights).astype(np.float32), dtype=np.float32)[-1]
        c = np.add.accumulate(weights, dtype=np.float32)[-1]
        return np.float32(s / c)


def _initial_bias(conf: GbdtConfig, labels: F32, weights: F32) -> np.float32:
    if conf.initial_guess_enabled:
        return np.float32(0.0)
    if conf.loss == "LAD":
        return _median_label(labels, weights)
    v = _label_average(labels, weights)
    if conf.loss == "LogLikelyhood":
        with np.errstate(all="ignore"):
            one = np.float32(1.0)
            ratio = np.float32((one + v) / (one - v))
            return np.float32(np.float32(np.log(np.float64(ratio))) / np.float32(2.0))
    return v


def _node_pred(members: Idx, loss: str, cache: _Cache) -> np.float32:
    """``calculate_pred``: the value a node predicts for its samples."""
    if loss == "LAD":
        in_node = np.zeros(len(cache.residual), dtype=bool)
        in_node[members] = True
        ordered = cache.residual_order[in_node[cache.residual_order]]
        if ordered.size == 0:
            return np.float32(0.0)
        weights = cache.c[ordered]
        all_weight = _seq_sum(weights)
        running = np.add.accumulate(weights)
        i = int(np.argmax(running * 2.0 > all_weight)) if (running * 2.0 > all_weight).any() else -1
        if i < 0:
            return np.float32(0.0)
        r = cache.residual[ordered]
        if i >= 1:
            return np.float32(np.float32(r[i] + r[i - 1]) / np.float32(2.0))
        return np.float32(r[i])
    if loss == "LogLikelyhood":
        s = _seq_sum(cache.s[members])
        c = _seq_sum(cache.logit_c[members].astype(np.float64))
        return np.float32(0.0) if abs(c) < 1e-10 else np.float32(s / c)
    s = _seq_sum(cache.s[members])
    w = _seq_sum(cache.c[members])
    return np.float32(0.0) if abs(w) < 1e-10 else np.float32(s / w)


def _same_target(members: Idx, cache: _Cache) -> bool:
    if members.size == 0:
        return False
    targets = cache.target[members]
    return bool(_almost_equal(targets[0], targets[1:]).all())


def _impurity(
    members: Idx, in_node: npt.NDArray[np.bool_], feature: int, cache: _Cache
) -> tuple[Idx, np.float32, float]:
    """``get_impurity``: (samples sorted by the feature, split value, impurity)."""
    order = cache.feature_order[feature]
    ordered = order[in_node[order]]
    values = cache.features[ordered, feature]
    # f32::MIN marks a missing value; it sorts first, so the unknown run leads.
    unknown = int(np.count_nonzero(values == VALUE_TYPE_UNKNOWN))
    if unknown == len(ordered):
        return ordered, VALUE_TYPE_UNKNOWN, _F64_MAX
    s0 = _seq_sum(cache.s[ordered[:unknown]])
    ss0 = _seq_sum(cache.ss[ordered[:unknown]])
    c0 = _seq_sum(cache.c[ordered[:unknown]])
    fitness0 = max(ss0 - s0 * s0 / c0, 0.0) if c0 > 1.0 else 0.0
    total_s = _seq_sum(cache.s[members]) - s0
    total_ss = _seq_sum(cache.ss[members]) - ss0
    total_c = _seq_sum(cache.c[members]) - c0

    body = ordered[unknown:-1]  # positions i = unknown .. len-2
    if body.size == 0:
        return ordered, VALUE_TYPE_UNKNOWN, _F64_MAX
    s, ss, c = cache.s[body], cache.ss[body], cache.c[body]
    ls, lss, lc = np.add.accumulate(s), np.add.accumulate(ss), np.add.accumulate(c)
    rs = np.subtract.accumulate(np.concatenate(([total_s], s)))[1:]
    rss = np.subtract.accumulate(np.concatenate(([total_ss], ss)))[1:]
    rc = np.subtract.accumulate(np.concatenate(([total_c], c)))[1:]
    f1 = values[unknown:-1]
    f2 = values[unknown + 1 :]
    with np.errstate(all="ignore"):
        fit1 = np.where(lc > 1.0, lss - ls * ls / lc, 0.0)
        fit2 = np.where(rc > 1.0, rss - rs * rs / rc, 0.0)
        fit1 = np.where(fit1 < 0.0, 0.0, fit1)
        fit2 = np.where(fit2 < 0.0, 0.0, fit2)
        fitness = (fitness0 + fit1) + fit2
    candidate = ~_almost_equal(f1, f2) & (fitness < _F64_MAX)
    if not candidate.any():
        return ordered, VALUE_TYPE_UNKNOWN, _F64_MAX
    masked = np.where(candidate, fitness, np.inf)
    best = int(np.argmin(masked))  # first strict minimum, as `impurity > fitness`
    value = np.float32(np.float32(f1[best] + f2[best]) / np.float32(2.0))
    return ordered, value, float(fitness[best])


def _split(
    members: Idx, feature_size: int, ratio: float, cache: _Cache, rng: random.Random
) -> tuple[tuple[Idx, Idx] | None, int, np.float32]:
    features = list(range(feature_size))
    count = feature_size
    if ratio < 1.0:
        count = int(ratio * feature_size)
        rng.shuffle(features)
    in_node = np.zeros(len(cache.target), dtype=bool)
    in_node[members] = True
    best_fitness = _F64_MAX
    best: tuple[Idx, int, np.float32] | None = None
    for f in features[:count]:
        ordered, value, impurity = _impurity(members, in_node, f, cache)
        if best_fitness > impurity:
            best_fitness = impurity
            best = (ordered, f, value)
    if best is None:
        return None, 0, np.float32(0.0)
    ordered, f, value = best
    values = cache.features[ordered, f]
    unknown = values == VALUE_TYPE_UNKNOWN
    go_left = ~unknown & (values < value)
    go_right = ~unknown & ~go_left
    empties = int(not go_left.any()) + int(not go_right.any()) + int(not unknown.any())
    if empties >= 2:
        return None, 0, np.float32(0.0)
    return (ordered[go_left], ordered[go_right]), f, value


def _fit_tree(conf: GbdtConfig, members: Idx, cache: _Cache, rng: random.Random) -> Tree:
    tree = Tree()

    def fit_node(node: int, depth: int, data: Idx) -> None:
        pred = _node_pred(data, conf.loss, cache)
        tree.pred[node] = pred
        if depth >= conf.max_depth or _same_target(data, cache) or len(data) <= conf.min_leaf_size:
            tree.is_leaf[node] = True
            cache.preds[data] = pred
            return
        children, feature, value = _split(
            data, conf.feature_size, conf.feature_sample_ratio, cache, rng
        )
        if children is None:
            tree.is_leaf[node] = True
            cache.preds[data] = pred
            return
        tree.feature_index[node] = feature
        tree.feature_value[node] = value
        left = tree.add_node()
        tree.left[node] = left
        fit_node(left, depth + 1, children[0])
        right = tree.add_node()
        tree.right[node] = right
        fit_node(right, depth + 1, children[1])

    fit_node(tree.add_node(), 0, members)
    return tree


def _iteration_cache(
    conf: GbdtConfig,
    features: F32,
    labels: F32,
    weights: F32,
    predicted: F32,
    feature_order: list[Idx],
) -> _Cache:
    with np.errstate(all="ignore"):
        residual = np.zeros_like(labels)
        if conf.loss == "LAD":
            residual = (labels - predicted).astype(np.float32)
            target = np.where(residual >= 0, np.float32(1.0), np.float32(-1.0)).astype(np.float32)
        elif conf.loss == "LogLikelyhood":
            two = np.float32(2.0)
            e = np.exp((two * labels * predicted).astype(np.float64)).astype(np.float32)
            target = (two * labels / (np.float32(1.0) + e)).astype(np.float32)
        else:
            target = (labels - predicted).astype(np.float32)
        w = weights.astype(np.float64)
        t = target.astype(np.float64)
        s = t * w
        ss = t * s
        y = np.abs(t)
        logit_c = (y * (2.0 - y) * w).astype(np.float32)
    return _Cache(
        feature_order=feature_order,
        features=features,
        target=target,
        s=s,
        ss=ss,
        c=w,
        logit_c=logit_c,
        residual_order=np.argsort(residual, kind="stable"),
        residual=residual,
        preds=np.full(len(labels), VALUE_TYPE_UNKNOWN, dtype=np.float32),
    )


def fit(
    conf: GbdtConfig,
    features: F32,
    labels: F32,
    *,
    rng: random.Random,
    check_cancel: Callable[[], None],
) -> GbdtModel:
    """``GBDT::fit`` on ``features`` (``nxfeature_size`` f32) and ``labels``.

    ``rng`` drives data/feature sampling (only used when a ratio is below 1.0).
    """
    n = len(labels)
    weights = np.ones(n, dtype=np.float32)
    bias = _initial_bias(conf, labels, weights)
    predicted = np.full(n, bias, dtype=np.float32)
    nr_samples = int(n * conf.data_sample_ratio) if conf.data_sample_ratio < 1.0 else n
    feature_order = [np.argsort(features[:, f], kind="stable") for f in range(conf.feature_size)]
    trees: list[Tree] = []
    for _ in range(conf.iterations):
        check_cancel()
        if nr_samples < n:
            shuffled = list(range(n))
            rng.shuffle(shuffled)
            subset = np.sort(np.array(shuffled[:nr_samples], dtype=np.int64))
            remaining = np.sort(np.array(shuffled[nr_samples:], dtype=np.int64))
        else:
            subset = np.arange(n, dtype=np.int64)
            remaining = np.zeros(0, dtype=np.int64)
        cache = _iteration_cache(conf, features, labels, weights, predicted, feature_order)
        tree = _fit_tree(conf, subset, cache, rng)
        trees.append(tree)
        with np.errstate(all="ignore"):
            predicted[subset] = predicted[subset] + cache.preds[subset] * conf.shrinkage
            if remaining.size:
                widths = np.full(remaining.size, conf.feature_size, dtype=np.int64)
                others = tree.predict(features[remaining], widths)
                predicted[remaining] = predicted[remaining] + others * conf.shrinkage
    return GbdtModel(conf=conf, trees=trees, bias=bias)
