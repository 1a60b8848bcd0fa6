"""Reader for SeetaFace's funnel-structured cascade model (``seeta_fd_frontal_v1.0.bin``).

The file is a flat little-endian stream of ``int32``/``float32`` values:

* ``num_hierarchy``; then per hierarchy ``hierarchy_size`` clusters; per cluster
  ``num_stage`` classifiers followed by ``num_wnd_src`` and that many source indices
  (which proposal lists of the previous hierarchy feed this cluster).
* Each classifier starts with its kind: ``0`` = LAB boosted, ``1`` = SURF-MLP.
* LAB boosted: ``num_base``, ``num_bin``; ``num_base`` (x, y) feature offsets;
  ``num_base`` thresholds; ``num_base`` x (``num_bin`` + 1) bin weights.
* SURF-MLP: ``num_layer``, ``num_feat``; ``num_feat`` 1-based feature ids; the score
  threshold; the input dimension; then per further layer its output dimension,
  ``in x out`` weights (one row of ``in`` values per output) and ``out`` biases.

Everything read is checked against the bounds the detector relies on; a file that
breaks one raises :class:`SeetaModelError` (the shipped model never does).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "LAB_BINS",
    "LAB_GROUP",
    "LabStage",
    "MlpLayer",
    "MlpStage",
    "SeetaCluster",
    "SeetaModel",
    "SeetaModelError",
    "parse_model",
]

F32Array = npt.NDArray[np.float32]
I64Array = npt.NDArray[np.int64]

#: LAB features are 8-bit codes: each base classifier has one weight per code.
LAB_BINS = 256
#: The boosted score is compared with the threshold after every group of this many.
LAB_GROUP = 10
#: LAB offsets stay inside the 40x40 window minus the 9x9 LAB block.
_LAB_MAX_OFFSET = 40 - 9
_MAX_COUNT = 1 << 16
_MAX_DIM = 4096
_SURF_KIND = 1
_LAB_KIND = 0


class SeetaModelError(ValueError):
    """The model file does not have the layout or the bounds the detector needs."""


@dataclass(frozen=True)
class LabStage:
    """A boosted classifier over LAB codes.

    Attributes:
        offset_x, offset_y: per base classifier, where in the 40x40 window its code is read.
        thresholds: per base classifier (only every ``LAB_GROUP``-th one is used).
        weights: ``(num_base, 256)`` score added for each code.
    """

    offset_x: I64Array
    offset_y: I64Array
    thresholds: F32Array
    weights: F32Array


@dataclass(frozen=True)
class MlpLayer:
    """One fully connected layer: ``weights`` is ``(out, in)``, ``biases`` is ``(out,)``."""

    weights: F32Array
    biases: F32Array


@dataclass(frozen=True)
class MlpStage:
    """A multilayer perceptron over SURF cell features (ReLU, then a sigmoid output layer).

    Attributes:
        feature_ids: 0-based indices into the SURF feature pool (the file stores them 1-based).
        threshold: output 0 must exceed it for the window to stay a face.
        layers: from input to output; the output layer has 4 units (score, dx, dy, dsize).
    """

    feature_ids: tuple[int, ...]
    threshold: np.float32
    layers: tuple[MlpLayer, ...]


@dataclass(frozen=True)
class SeetaCluster:
    """One node of a hierarchy: its stages in order and the proposal lists it reads."""

    stages: tuple[LabStage | MlpStage, ...]
    window_sources: tuple[int, ...]


@dataclass(frozen=True)
class SeetaModel:
    """The whole funnel: ``hierarchies[0]`` are the LAB sliding-window classifiers."""

    hierarchies: tuple[tuple[SeetaCluster, ...], ...]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def _take(self, count: int) -> int:
        start = self._pos
        if count < 0 or start + 4 * count > len(self._data):
            raise SeetaModelError("Face detector model is truncated")
        self._pos = start + 4 * count
        return start

    def int32(self) -> int:
        start = self._take(1)
        value: int = struct.unpack_from("<i", self._data, start)[0]
        return value

    def count(self, what: str, upper: int = _MAX_COUNT) -> int:
        value = self.int32()
        if not 1 <= value <= upper:
            raise SeetaModelError(f"Face detector model has an invalid {what}: {value}")
        return value

    def ints(self, count: int) -> I64Array:
        start = self._take(count)
        return np.frombuffer(self._data, "<i4", count, start).astype(np.int64)

    def floats(self, count: int) -> F32Array:
        start = self._take(count)
        return np.frombuffer(self._data, "<f4", count, start).astype(np.float32)

    @property
    def exhausted(self) -> bool:
        return self._pos == len(self._data)


def _lab_stage(reader: _Reader) -> LabStage:
    num_base = reader.count("number of base classifiers")
    num_bin = reader.count("number of LAB bins", LAB_BINS)
    if num_bin + 1 != LAB_BINS or num_base % LAB_GROUP != 0:
        raise SeetaModelError("Face detector model has an unsupported LAB classifier shape")
    offsets = reader.ints(2 * num_base).reshape(num_base, 2)
    if offsets.min() < 0 or offsets.max() > _LAB_MAX_OFFSET:
        raise SeetaModelError("Face detector model has a LAB offset outside the window")
    thresholds = reader.floats(num_base)
    weights = reader.floats(num_base * LAB_BINS).reshape(num_base, LAB_BINS)
    return LabStage(
        offset_x=np.ascontiguousarray(offsets[:, 0]),
        offset_y=np.ascontiguousarray(offsets[:, 1]),
        thresholds=thresholds,
        weights=weights,
    )


def _mlp_stage(reader: _Reader, pool_size: int, feature_dim: int) -> MlpStage:
    num_layer = reader.count("number of MLP layers", 64)
    num_feat = reader.count("number of SURF features", pool_size)
    ids = reader.ints(num_feat)
    if ids.min() < 1 or ids.max() > pool_size:
        raise SeetaModelError("Face detector model has a SURF feature id outside the pool")
    threshold = np.float32(reader.floats(1)[0])
    in_dim = reader.count("MLP input size", _MAX_DIM)
    if in_dim != num_feat * feature_dim or num_layer < 2:
        raise SeetaModelError("Face detector model has an MLP that does not fit its features")
    layers: list[MlpLayer] = []
    for _ in range(num_layer - 1):
        out_dim = reader.count("MLP layer size", _MAX_DIM)
        weights = reader.floats(in_dim * out_dim).reshape(out_dim, in_dim)
        layers.append(MlpLayer(weights=weights, biases=reader.floats(out_dim)))
        in_dim = out_dim
    if in_dim != 4:
        raise SeetaModelError("Face detector model has an MLP output that is not 4 wide")
    return MlpStage(
        feature_ids=tuple(int(i) - 1 for i in ids), threshold=threshold, layers=tuple(layers)
    )


def parse_model(data: bytes, pool_size: int, feature_dim: int) -> SeetaModel:
    """Parse a FuSt model; ``pool_size``/``feature_dim`` describe the SURF feature pool.

    Raises:
        SeetaModelError: truncated or trailing data, unknown classifier kinds, counts or
            offsets out of range, an MLP whose input does not match its features, a first
            hierarchy that is not all single LAB stages, or window sources out of range.
    """
    reader = _Reader(data)
    hierarchies: list[tuple[SeetaCluster, ...]] = []
    previous_size = 0
    first_size = 0
    for level in range(reader.count("number of hierarchies", 64)):
        clusters: list[SeetaCluster] = []
        size = reader.count("hierarchy size", 64)
        for _ in range(size):
            stages: list[LabStage | MlpStage] = []
            for _ in range(reader.count("number of stages", 64)):
                kind = reader.int32()
                if kind == _LAB_KIND:
                    stages.append(_lab_stage(reader))
                elif kind == _SURF_KIND:
                    stages.append(_mlp_stage(reader, pool_size, feature_dim))
                else:
                    raise SeetaModelError(f"Face detector model has an unknown classifier {kind}")
            num_src = reader.int32()
            sources = tuple(int(i) for i in reader.ints(num_src)) if num_src > 0 else ()
            clusters.append(SeetaCluster(stages=tuple(stages), window_sources=sources))
        _check_hierarchy(level, clusters, previous_size)
        if level == 0:
            first_size = size
        elif size > first_size:
            raise SeetaModelError("Face detector model has a hierarchy wider than the first")
        previous_size = size
        hierarchies.append(tuple(clusters))
    if not reader.exhausted:
        raise SeetaModelError("Face detector model has trailing data")
    return SeetaModel(hierarchies=tuple(hierarchies))


def _check_hierarchy(level: int, clusters: list[SeetaCluster], previous_size: int) -> None:
    if level == 0:
        if any(len(c.stages) != 1 or not isinstance(c.stages[0], LabStage) for c in clusters):
            raise SeetaModelError("Face detector model must start with single LAB stages")
        return
    for cluster in clusters:
        if not cluster.window_sources or any(
            not 0 <= s < previous_size for s in cluster.window_sources
        ):
            raise SeetaModelError("Face detector model has an invalid window source")
        if any(not isinstance(s, MlpStage) for s in cluster.stages):
            raise SeetaModelError("Face detector model has a LAB stage after the first hierarchy")
