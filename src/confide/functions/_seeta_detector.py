"""SeetaFace's funnel-structured cascade (FuSt) detector, as rustface runs it.

1. Image pyramid: scale ``s`` starts at 1 and is multiplied by ``scale_factor`` (``f32``)
   while ``s >= 40 / min(width, height, max_face_size)``; each level is the 1x image
   resized to ``(int(width * s), int(height * s))``.
2. Every 40x40 window at steps ``step_x``/``step_y`` of every level goes through each
   LAB classifier of the first hierarchy; accepted windows become boxes in 1x
   coordinates (``int(x / s + 0.5)``, side ``int(40 / s + 0.5)``) on that classifier's
   list, which non-maximum suppression (IoU 0.8) then thins.
3. Later hierarchies merge their source lists and run their SURF-MLP stages: each box is
   cut from the 1x image (zero padding outside), resized to 40x40, scored, and moved and
   resized by the MLP's regression outputs; between stages of a cluster IoU-0.8 NMS, after
   the very last stage IoU-0.3 NMS.
4. NMS keeps the best-scoring box of each overlapping group and gives it the **sum** of
   the group's scores; faces scoring below ``score_thresh`` are dropped.

``min_face_size`` and ``window_size`` do not change the search: rustface validates them
and then uses the fixed 40-pixel window from scale 1 (its maximum-scale line is commented
out). Arithmetic follows rustface's types (``f32`` scores and box maths, ``f64`` NMS
sums) so that results match it, not merely resemble it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ._seeta_features import (
    WINDOW,
    lab_feature_map,
    lab_scores,
    mlp_forward,
    resize,
    surf_features,
    window_crops,
)
from ._seeta_model import LabStage, MlpStage, SeetaModel

__all__ = ["DetectorOptions", "Face", "detect_faces", "non_maximum_suppression"]

U8Image = npt.NDArray[np.uint8]
I64Array = npt.NDArray[np.int64]
F64Array = npt.NDArray[np.float64]

_F32 = np.float32
_I32_MAX = (1 << 31) - 1
_U32_MAX = (1 << 32) - 1


@dataclass(frozen=True)
class DetectorOptions:
    """rustface's detector settings (defaults: those of ``FuStDetector::new``).

    ``max_face_size`` of 0 means "no limit" (rustface stores it as ``i32`` and ignores
    values that are not positive).
    """

    step_x: int = 4
    step_y: int = 4
    max_face_size: int = 0
    scale_factor: float = 0.8
    score_thresh: float = 3.85


@dataclass(frozen=True)
class Face:
    """One detection in 1x image coordinates (rustface's ``FaceInfo`` without the pose)."""

    x: int
    y: int
    width: int
    height: int
    score: float


@dataclass
class _Boxes:
    """A proposal list: ``(n, 4)`` x, y, width, height (width == height) and ``f64`` scores."""

    boxes: I64Array = field(default_factory=lambda: np.zeros((0, 4), dtype=np.int64))
    scores: F64Array = field(default_factory=lambda: np.zeros(0, dtype=np.float64))

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def copy(self) -> _Boxes:
        return _Boxes(self.boxes.copy(), self.scores.copy())

    @staticmethod
    def concat(parts: list[_Boxes]) -> _Boxes:
        if not parts:
            return _Boxes()
        return _Boxes(
            np.concatenate([p.boxes for p in parts]), np.concatenate([p.scores for p in parts])
        )


#: Boxes per block when listing overlapping pairs (bounds the pair matrices).
_PAIR_BLOCK = 128


def _overlapping_pairs(boxes: I64Array, iou_thresh: float) -> tuple[I64Array, I64Array]:
    """All index pairs ``a < b`` whose IoU (rustface's ``f32`` formula) exceeds the threshold.

    Boxes are visited in blocks of consecutive top edges; a block is compared only with
    the boxes whose top edge is not below the block's lowest bottom edge.
    """
    count = boxes.shape[0]
    x1 = boxes[:, 0]
    y1 = boxes[:, 1]
    x2 = x1 + boxes[:, 2] - 1
    y2 = y1 + boxes[:, 3] - 1
    areas = (boxes[:, 2] * boxes[:, 3]).astype(np.float32)
    thresh = _F32(iou_thresh)
    by_top = np.argsort(y1, kind="stable")
    tops = y1[by_top]
    firsts: list[I64Array] = []
    seconds: list[I64Array] = []
    for start in range(0, count, _PAIR_BLOCK):
        rows = by_top[start : start + _PAIR_BLOCK]
        end = int(np.searchsorted(tops, y2[rows].max(), side="right"))
        cols = by_top[start:end]
        later = np.arange(start, end)[None, :] > np.arange(start, start + rows.shape[0])[:, None]
        w = np.minimum(x2[rows][:, None], x2[cols][None, :]) - np.maximum(
            x1[rows][:, None], x1[cols][None, :]
        )
        h = np.minimum(y2[rows][:, None], y2[cols][None, :]) - np.maximum(
            y1[rows][:, None], y1[cols][None, :]
        )
        w += 1
        h += 1
        inter = (w * h).astype(np.float32)
        union = (areas[rows][:, None] + areas[cols][None, :]) - inter
        with np.errstate(divide="ignore", invalid="ignore"):
            hit = later & (w > 0) & (h > 0) & (inter / union > thresh)
        i, j = np.nonzero(hit)
        first, second = rows[i], cols[j]
        firsts.append(np.minimum(first, second))
        seconds.append(np.maximum(first, second))
    if not firsts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(firsts), np.concatenate(seconds)


def non_maximum_suppression(
    boxes: I64Array, scores: F64Array, iou_thresh: float
) -> tuple[I64Array, F64Array]:
    """rustface's NMS: stable sort by score (descending), keep the first unmerged box, merge
    every later box whose IoU (``f32``) exceeds ``iou_thresh`` and add its score to the
    kept one (``f64``, in sorted order). Returns the kept boxes and summed scores in order.
    """
    order = np.argsort(-scores, kind="stable")
    boxes = boxes[order]
    scores = scores[order]
    count = scores.shape[0]
    first, second = _overlapping_pairs(boxes, iou_thresh)
    pair_order = np.lexsort((second, first))
    first, second = first[pair_order], second[pair_order]
    bounds = np.searchsorted(first, np.arange(count + 1)).tolist()
    partners = second.tolist()
    values = scores.tolist()
    merged = [False] * count
    kept: list[int] = []
    sums: list[float] = []
    for i in range(count):
        if merged[i]:
            continue
        merged[i] = True
        kept.append(i)
        total = values[i]
        for j in partners[bounds[i] : bounds[i + 1]]:
            if not merged[j]:
                merged[j] = True
                total += values[j]
        sums.append(total)
    index = np.asarray(kept, dtype=np.int64)
    return boxes[index].reshape(-1, 4), np.asarray(sums, dtype=np.float64)


def _nms(proposals: _Boxes, iou_thresh: float) -> _Boxes:
    boxes, scores = non_maximum_suppression(proposals.boxes, proposals.scores, iou_thresh)
    return _Boxes(boxes, scores)


def _pyramid_level_boxes(
    xs: I64Array, ys: I64Array, scale: np.float32
) -> tuple[I64Array, I64Array, int]:
    half = _F32(0.5)
    bx = (xs.astype(np.float32) / scale + half).astype(np.int64)
    by = (ys.astype(np.float32) / scale + half).astype(np.int64)
    side = int(_F32(_F32(WINDOW) / scale + half))
    return bx, by, side


def _first_hierarchy(
    gray: U8Image,
    stages: list[LabStage],
    options: DetectorOptions,
    check_cancel: Callable[[], None],
) -> list[_Boxes]:
    height, width = gray.shape
    min_side = min(width, height)
    if 0 < options.max_face_size <= _I32_MAX:
        min_side = min(min_side, options.max_face_size)
    min_scale = _F32(WINDOW) / _F32(min_side)
    step = _F32(options.scale_factor)
    scale = _F32(1.0)
    found: list[list[_Boxes]] = [[] for _ in stages]
    while scale >= min_scale:
        level_w = int(_F32(width) * scale)
        level_h = int(_F32(height) * scale)
        if level_w >= WINDOW and level_h >= WINDOW:
            check_cancel()
            level = resize(gray, level_w, level_h)
            lab = lab_feature_map(level)
            wy = np.arange(0, level_h - WINDOW + 1, options.step_y, dtype=np.int64)
            wx = np.arange(0, level_w - WINDOW + 1, options.step_x, dtype=np.int64)
            ys = np.repeat(wy, wx.shape[0])
            xs = np.tile(wx, wy.shape[0])
            bx, by, side = _pyramid_level_boxes(xs, ys, scale)
            for slot, stage in enumerate(stages):
                accepted, score = lab_scores(lab, stage, ys, xs)
                boxes = np.stack(
                    (
                        bx[accepted],
                        by[accepted],
                        np.full(accepted.shape[0], side, dtype=np.int64),
                        np.full(accepted.shape[0], side, dtype=np.int64),
                    ),
                    axis=1,
                )
                found[slot].append(_Boxes(boxes, score.astype(np.float64)))
        scale = _F32(scale * step)
    return [_Boxes.concat(parts) for parts in found]


def _mlp_stage(gray: U8Image, stage: MlpStage, proposals: _Boxes) -> _Boxes:
    """Score every box with the MLP and regress the accepted ones (rustface's arithmetic)."""
    if len(proposals) == 0:
        return _Boxes()
    boxes = proposals.boxes
    visible = (boxes[:, 0] + boxes[:, 2] > 0) & (boxes[:, 1] + boxes[:, 3] > 0)
    visible &= boxes[:, 2] >= 2  # a 0/1-pixel box cannot be resized (rustface: UB)
    boxes = boxes[visible]
    crops = window_crops(gray, boxes[:, [0, 1, 2]])
    outputs = mlp_forward(surf_features(crops, stage.feature_ids), stage.layers)
    accept = outputs[:, 0] > stage.threshold
    boxes = boxes[accept]
    out = outputs[accept]
    # rustface moves the box origin into the image before reading it.
    x = np.maximum(boxes[:, 0], 0).astype(np.float32)
    y = np.maximum(boxes[:, 1], 0).astype(np.float32)
    w = boxes[:, 2].astype(np.float32)
    h = boxes[:, 3].astype(np.float32)
    two, one, half = _F32(2.0), _F32(1.0), _F32(0.5)
    side = np.floor((out[:, 3] * two - one) * w + w + half)
    new_x = np.floor((out[:, 1] * two - one) * w + x + (w - side) * half + half)
    new_y = np.floor((out[:, 2] * two - one) * h + y + (h - side) * half + half)
    side_u32 = np.clip(np.nan_to_num(side, nan=0.0), 0, _U32_MAX).astype(np.int64)
    result = np.stack(
        (
            np.clip(np.nan_to_num(new_x, nan=0.0), -_I32_MAX - 1, _I32_MAX).astype(np.int64),
            np.clip(np.nan_to_num(new_y, nan=0.0), -_I32_MAX - 1, _I32_MAX).astype(np.int64),
            side_u32,
            side_u32,
        ),
        axis=1,
    )
    return _Boxes(result, out[:, 0].astype(np.float64))


def _later_hierarchies(
    gray: U8Image,
    model: SeetaModel,
    nms: list[_Boxes],
    check_cancel: Callable[[], None],
) -> list[_Boxes]:
    """Mirror of rustface's slot bookkeeping: ``proposals`` and ``proposals_nms`` lists."""
    proposals = [_Boxes() for _ in nms]
    last = len(model.hierarchies) - 1
    for level in range(1, len(model.hierarchies)):
        slots: list[int] = []
        for cluster in model.hierarchies[level]:
            slot = cluster.window_sources[0]
            slots.append(slot)
            proposals[slot] = _Boxes.concat([nms[k].copy() for k in cluster.window_sources])
            for k, stage in enumerate(cluster.stages):
                check_cancel()
                if not isinstance(stage, MlpStage):  # parse_model forbids this
                    raise TypeError("LAB stage after the first hierarchy")
                proposals[slot] = _mlp_stage(gray, stage, proposals[slot])
                if k < len(cluster.stages) - 1:
                    nms[slot] = _nms(proposals[slot], 0.8)
                    proposals[slot] = nms[slot].copy()
                elif level == last:
                    nms[slot] = _nms(proposals[slot], 0.3)
                    proposals[slot] = nms[slot].copy()
        for j, slot in enumerate(slots):
            nms[j] = proposals[slot].copy()
    return nms


def detect_faces(
    gray: U8Image,
    model: SeetaModel,
    options: DetectorOptions,
    check_cancel: Callable[[], None] = lambda: None,
) -> list[Face]:
    """Run the funnel on a grey image (``uint8``, height x width) and return the faces."""
    first = [s for c in model.hierarchies[0] for s in c.stages if isinstance(s, LabStage)]
    lists = _first_hierarchy(gray, first, options, check_cancel)
    nms = [_nms(found, 0.8) for found in lists]
    result = _later_hierarchies(gray, model, nms, check_cancel)[0]
    return [
        Face(int(b[0]), int(b[1]), int(b[2]), int(b[3]), float(s))
        for b, s in zip(result.boxes.tolist(), result.scores.tolist(), strict=True)
        if s >= options.score_thresh
    ]
