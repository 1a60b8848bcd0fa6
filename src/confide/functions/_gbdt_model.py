"""gbdt-rs models: the JSON format, validation and prediction.

The format is gbdt-rs's serde serialisation of ``GBDT`` (all values are f32
except the two sample ratios)::

    {"conf":{"feature_size":4,"max_depth":4,"iterations":100,"shrinkage":0.1,
             "feature_sample_ratio":1.0,"data_sample_ratio":1.0,"min_leaf_size":1,
             "loss":"LAD","debug":false,"initial_guess_enabled":false,
             "training_optimization_level":2},
     "trees":[{"tree":{"tree":[{"value":{"feature_index":2,"feature_value":2.45,
                "pred":0.0,"missing":0,"is_leaf":false},"index":0,"left":1,"right":2},…]},
               "feature_size":4,"max_depth":4,"min_leaf_size":1,"loss":"LAD",
               "feature_sample_ratio":1.0},…],
     "bias":2.0}

Nodes are stored in pre-order; child index 0 means "no child".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from confide.invocation import FunctionError

from ._rust import json_f32, json_f64

__all__ = [
    "LOSSES",
    "LOSS_FROM_ARGUMENT",
    "VALUE_TYPE_UNKNOWN",
    "GbdtConfig",
    "GbdtModel",
    "Tree",
    "load_model",
]

F32 = npt.NDArray[np.float32]

#: serde names of gbdt-rs ``Loss`` variants.
LOSSES = (
    "SquaredError",
    "LogLikelyhood",
    "LAD",
    "RegLinear",
    "RegLogistic",
    "BinaryLogistic",
    "BinaryLogitraw",
    "MultiSoftprob",
    "MultiSoftmax",
    "RankPairwise",
)
#: ``string2loss``: the ``loss`` argument → variant; anything else is SquaredError.
LOSS_FROM_ARGUMENT = {
    "LogLikelyhood": "LogLikelyhood",
    "SquaredError": "SquaredError",
    "LAD": "LAD",
    "reg:linear": "RegLinear",
    "binary:logistic": "BinaryLogistic",
    "reg:logistic": "RegLogistic",
    "binary:logitraw": "BinaryLogitraw",
    "multi:softprob": "MultiSoftprob",
    "multi:softmax": "MultiSoftmax",
    "rank:pairwise": "RankPairwise",
}
#: ``f32::MIN``: gbdt-rs's marker for a missing feature value.
VALUE_TYPE_UNKNOWN = np.float32(np.finfo(np.float32).min)


@dataclass
class GbdtConfig:
    """gbdt-rs ``Config``."""

    feature_size: int
    max_depth: int
    iterations: int
    shrinkage: np.float32
    feature_sample_ratio: float
    data_sample_ratio: float
    min_leaf_size: int
    loss: str
    debug: bool = False
    initial_guess_enabled: bool = False
    training_optimization_level: int = 2

    def to_json(self) -> str:
        return (
            f'{{"feature_size":{self.feature_size},"max_depth":{self.max_depth},'
            f'"iterations":{self.iterations},"shrinkage":{json_f32(self.shrinkage)},'
            f'"feature_sample_ratio":{json_f64(self.feature_sample_ratio)},'
            f'"data_sample_ratio":{json_f64(self.data_sample_ratio)},'
            f'"min_leaf_size":{self.min_leaf_size},"loss":"{self.loss}",'
            f'"debug":{_bool(self.debug)},'
            f'"initial_guess_enabled":{_bool(self.initial_guess_enabled)},'
            f'"training_optimization_level":{self.training_optimization_level}}}'
        )


@dataclass
class Tree:
    """One decision tree as parallel arrays, indexed by node number."""

    feature_index: list[int] = field(default_factory=list)
    feature_value: list[np.float32] = field(default_factory=list)
    pred: list[np.float32] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    is_leaf: list[bool] = field(default_factory=list)
    left: list[int] = field(default_factory=list)
    right: list[int] = field(default_factory=list)

    def add_node(self) -> int:
        """Append an empty node (``DTNode::new``) and return its index."""
        self.feature_index.append(0)
        self.feature_value.append(np.float32(0.0))
        self.pred.append(np.float32(0.0))
        self.missing.append(0)
        self.is_leaf.append(False)
        self.left.append(0)
        self.right.append(0)
        return len(self.left) - 1

    def __len__(self) -> int:
        return len(self.left)

    def to_json(self, conf: GbdtConfig) -> str:
        nodes = ",".join(
            f'{{"value":{{"feature_index":{self.feature_index[i]},'
            f'"feature_value":{json_f32(self.feature_value[i])},'
            f'"pred":{json_f32(self.pred[i])},"missing":{self.missing[i]},'
            f'"is_leaf":{_bool(self.is_leaf[i])}}},'
            f'"index":{i},"left":{self.left[i]},"right":{self.right[i]}}}'
            for i in range(len(self))
        )
        return (
            f'{{"tree":{{"tree":[{nodes}]}},"feature_size":{conf.feature_size},'
            f'"max_depth":{conf.max_depth},"min_leaf_size":{conf.min_leaf_size},'
            f'"loss":"{conf.loss}","feature_sample_ratio":{json_f64(conf.feature_sample_ratio)}}}'
        )

    def predict(self, features: F32, lengths: npt.NDArray[np.int64]) -> F32:
        """Route every row of ``features`` (``nxk`` f32) to a node; return its ``pred``.

        ``lengths[i]`` is the number of features row ``i`` really has.

        Raises:
            FunctionError: the tree is empty, a child is missing, or a row lacks a feature.
        """
        n = features.shape[0]
        if not self.left:
            raise FunctionError("Invalid model: Decision tree should have root node")
        fidx = np.array(self.feature_index, dtype=np.int64)
        fval = np.array(self.feature_value, dtype=np.float32)
        leaf = np.array(self.is_leaf, dtype=bool)
        miss = np.array(self.missing, dtype=np.int64)
        left = np.array(self.left, dtype=np.int64)
        right = np.array(self.right, dtype=np.int64)
        node = np.zeros(n, dtype=np.int64)
        active = ~leaf[node]
        # A well-formed tree ends within len(tree) steps; more means a cycle.
        for _ in range(len(self) + 1):
            if not active.any():
                break
            rows = np.nonzero(active)[0]
            at = node[rows]
            feat = fidx[at]
            if (feat >= lengths[rows]).any():
                raise FunctionError("sample doesn't have the feature")
            values = features[rows, feat]
            unknown = values == VALUE_TYPE_UNKNOWN
            go_left = np.where(unknown, miss[at] == -1, values < fval[at])
            stop = unknown & (miss[at] == 0)
            nxt = np.where(go_left, left[at], right[at])
            moving = ~stop
            if (nxt[moving] == 0).any():
                raise FunctionError("Invalid model: child should not be None")
            node[rows[moving]] = nxt[moving]
            active[rows[stop]] = False
            active[rows[moving]] = ~leaf[nxt[moving]]
        else:
            raise FunctionError("Invalid model: cyclic tree")
        return np.array(self.pred, dtype=np.float32)[node]


@dataclass
class GbdtModel:
    """gbdt-rs ``GBDT``: config, trees and bias."""

    conf: GbdtConfig
    trees: list[Tree]
    bias: np.float32

    def to_json(self) -> str:
        trees = ",".join(t.to_json(self.conf) for t in self.trees)
        return f'{{"conf":{self.conf.to_json()},"trees":[{trees}],"bias":{json_f32(self.bias)}}}'

    def predict(self, features: F32, lengths: npt.NDArray[np.int64]) -> F32:
        """gbdt-rs ``GBDT::predict`` in f32 arithmetic (``lengths`` as in :meth:`Tree.predict`).

        Raises:
            FunctionError: ``iterations`` differs from the number of trees, or a tree error.
        """
        n = features.shape[0]
        if self.conf.iterations != len(self.trees):
            raise FunctionError("Invalid model: iterations differ from the number of trees")
        if not self.trees:
            return np.full(n, VALUE_TYPE_UNKNOWN, dtype=np.float32)
        start = np.float32(0.0) if self.conf.initial_guess_enabled else self.bias
        predicted = np.full(n, start, dtype=np.float32)
        with np.errstate(all="ignore"):
            for tree in self.trees:
                predicted = predicted + self.conf.shrinkage * tree.predict(features, lengths)
            one = np.float32(1.0)
            if self.conf.loss == "LogLikelyhood":
                predicted = one / (one + _exp_f32(np.float32(-2.0) * predicted))
            elif self.conf.loss in ("BinaryLogistic", "RegLogistic"):
                predicted = one / (one + _exp_f32(-predicted))
        return predicted.astype(np.float32)


def _exp_f32(values: F32) -> F32:
    """``f32::exp``: computed in f64 and rounded once, like glibc's ``expf``."""
    with np.errstate(all="ignore"):
        return np.exp(values.astype(np.float64)).astype(np.float32)


def _bool(value: bool) -> str:
    return "true" if value else "false"


# --- loading -------------------------------------------------------------------------------


def _fail(what: str) -> FunctionError:
    return FunctionError(f"Invalid model: {what}")


def _get(obj: Any, key: str) -> Any:
    if not isinstance(obj, dict):
        raise _fail("expected a JSON object")
    if key not in obj:
        raise _fail(f"missing field `{key}`")
    return obj[key]


def _uint(obj: Any, key: str, bits: int = 64) -> int:
    value = _get(obj, key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**bits:
        raise _fail(f"`{key}` must be an unsigned integer")
    return value


def _number(obj: Any, key: str) -> float:
    value = _get(obj, key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(f"`{key}` must be a number")
    return float(value)


def _f32(obj: Any, key: str) -> np.float32:
    with np.errstate(over="ignore"):
        return np.float32(_number(obj, key))


def _boolean(obj: Any, key: str) -> bool:
    value = _get(obj, key)
    if not isinstance(value, bool):
        raise _fail(f"`{key}` must be a boolean")
    return value


def _loss(obj: Any, key: str) -> str:
    value = _get(obj, key)
    if value not in LOSSES:
        raise _fail(f"unknown variant `{value}`")
    return str(value)


def _load_conf(obj: Any) -> GbdtConfig:
    return GbdtConfig(
        feature_size=_uint(obj, "feature_size"),
        max_depth=_uint(obj, "max_depth", 32),
        iterations=_uint(obj, "iterations"),
        shrinkage=_f32(obj, "shrinkage"),
        feature_sample_ratio=_number(obj, "feature_sample_ratio"),
        data_sample_ratio=_number(obj, "data_sample_ratio"),
        min_leaf_size=_uint(obj, "min_leaf_size"),
        loss=_loss(obj, "loss"),
        debug=_boolean(obj, "debug"),
        initial_guess_enabled=_boolean(obj, "initial_guess_enabled"),
        training_optimization_level=_uint(obj, "training_optimization_level", 8),
    )


def _load_tree(obj: Any, budget: list[int]) -> Tree:
    for key in ("feature_size", "min_leaf_size"):
        _uint(obj, key)
    _uint(obj, "max_depth", 32)
    _loss(obj, "loss")
    _number(obj, "feature_sample_ratio")
    nodes = _get(_get(obj, "tree"), "tree")
    if not isinstance(nodes, list):
        raise _fail("`tree` must be an array")
    budget[0] -= len(nodes)
    if budget[0] < 0:
        raise _fail("too many tree nodes")
    tree = Tree()
    for node in nodes:
        value = _get(node, "value")
        _uint(node, "index")
        tree.feature_index.append(_uint(value, "feature_index"))
        tree.feature_value.append(_f32(value, "feature_value"))
        tree.pred.append(_f32(value, "pred"))
        missing = _get(value, "missing")
        if isinstance(missing, bool) or not isinstance(missing, int) or not -128 <= missing < 128:
            raise _fail("`missing` must be an i8")
        tree.missing.append(missing)
        tree.is_leaf.append(_boolean(value, "is_leaf"))
        tree.left.append(_uint(node, "left"))
        tree.right.append(_uint(node, "right"))
    for child in tree.left + tree.right:
        if child >= len(nodes):
            raise _fail("child index out of range")
    return tree


def load_model(text: bytes, max_nodes: int) -> GbdtModel:
    """Parse and validate a gbdt-rs JSON model.

    Raises:
        FunctionError: ``Invalid model: …`` for malformed JSON or a field of the wrong type.
    """
    try:
        obj: Any = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise _fail(str(e)) from e
    conf = _load_conf(_get(obj, "conf"))
    trees_obj = _get(obj, "trees")
    if not isinstance(trees_obj, list):
        raise _fail("`trees` must be an array")
    budget = [max_nodes]
    trees = [_load_tree(t, budget) for t in trees_obj]
    return GbdtModel(conf=conf, trees=trees, bias=_f32(obj, "bias"))
