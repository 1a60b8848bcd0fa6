"""The image operations of SeetaFace's detector, vectorised and bit-faithful to rustface.

* :func:`resize` — rustface's bilinear resize (``f64`` weights, source index clamped to
  ``len - 2``, truncation to ``u8``), used for the pyramid and for each candidate window.
* :func:`lab_feature_map` / :func:`lab_scores` — LAB (locally assembled binary) codes:
  each pixel's 9x9 block is 3x3 cells of 3x3 pixels, and bit ``k`` says whether the
  centre cell's sum is at least neighbour ``k``'s; a boosted classifier adds one ``f32``
  weight per code and gives up after any group of 10 whose running score falls below the
  threshold; a window also needs a pixel standard deviation above 10.
* :func:`surf_features` — for 40x40 windows: central-difference gradients, 8 channels
  (``dx``, ``|dx|`` split by the sign of ``dy``; ``dy``, ``|dy|`` split by the sign of
  ``dx``), 2x2 cell sums per pool patch, L2-normalised as rustface does (squares in
  wrapping ``i32``, the norm rounded to ``f32``).
* :func:`mlp_forward` — ``f32`` dense layers with the inner product summed strictly left
  to right (rustface's portable loop), ReLU, and a sigmoid output layer using a correctly
  rounded ``expf``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ._seeta_model import LAB_GROUP, LabStage, MlpLayer

__all__ = [
    "SURF_FEATURE_DIM",
    "SURF_POOL",
    "WINDOW",
    "LabMap",
    "SurfPatch",
    "lab_feature_map",
    "lab_scores",
    "mlp_forward",
    "resize",
    "surf_features",
    "window_crops",
]

U8Image = npt.NDArray[np.uint8]
I64Array = npt.NDArray[np.int64]
F32Array = npt.NDArray[np.float32]
F64Array = npt.NDArray[np.float64]

#: The detector's window side in pixels (rustface forces 40 whatever ``window_size`` says).
WINDOW = 40
_CHANNELS = 8
_CELLS = 2
#: 2x2 cells x 8 channels per pool patch.
SURF_FEATURE_DIM = _CELLS * _CELLS * _CHANNELS
_STD_DEV_MIN = 10.0
_ONE = np.float32(1.0)
#: Windows per block in :func:`window_crops` and :func:`_cell_sums` (keeps temporaries in cache).
_BLOCK = 128


@dataclass(frozen=True)
class SurfPatch:
    """One SURF pool patch inside the 40x40 window (split into 2x2 cells)."""

    x: int
    y: int
    width: int
    height: int


def _surf_pool() -> tuple[SurfPatch, ...]:
    """SeetaFace's pool: patch shapes (w:h) 1:1, 1:2, 2:1, 2:3, 3:2, sides 16..40, step 16."""
    patches: list[SurfPatch] = []
    for unit_w, unit_h in ((1, 1), (1, 2), (2, 1), (2, 3), (3, 2)):
        for height in range(16, WINDOW + 1):
            if height % _CELLS or height % unit_h:
                continue
            width = height // unit_h * unit_w
            if width % _CELLS or not 16 <= width <= WINDOW:
                continue
            for y in range(0, WINDOW - height + 1, 16):
                for x in range(0, WINDOW - width + 1, 16):
                    patches.append(SurfPatch(x, y, width, height))
    return tuple(patches)


SURF_POOL = _surf_pool()


def _axis(src_len: int, dst_len: int) -> tuple[I64Array, F64Array]:
    """Source index and weight per destination index along one axis (rustface's formula)."""
    pos = (src_len / dst_len) * np.arange(dst_len, dtype=np.float64)
    index = np.minimum(pos.astype(np.int64), src_len - 2)
    return index, pos - index


def _blend(
    d1: F64Array, d2: F64Array, d3: F64Array, d4: F64Array, wx: F64Array, wy: F64Array
) -> U8Image:
    top = (1.0 - wx) * d1 + wx * d2
    bottom = (1.0 - wx) * d3 + wx * d4
    value = (1.0 - wy) * top + wy * bottom
    return np.clip(value, 0.0, 255.0).astype(np.uint8)


def resize(image: U8Image, width: int, height: int) -> U8Image:
    """Resize a grey image to ``width`` x ``height`` exactly as rustface's ``resize_image``."""
    src_h, src_w = image.shape
    if (src_w, src_h) == (width, height):
        return image.copy()
    nx, wx = _axis(src_w, width)
    ny, wy = _axis(src_h, height)
    rows0 = image[ny].astype(np.float64)
    rows1 = image[ny + 1].astype(np.float64)
    return _blend(
        rows0[:, nx], rows0[:, nx + 1], rows1[:, nx], rows1[:, nx + 1], wx[None, :], wy[:, None]
    )


def window_crops(image: U8Image, boxes: I64Array) -> U8Image:
    """Crop square ``boxes`` (x, y, side) with zero padding and resize each to 40x40.

    rustface copies the box into a zero-padded buffer of the box's size, then applies
    :func:`resize`; this gathers the same four neighbours straight from the image (with
    a one-pixel zero border, so that any index outside the image reads 0).
    """
    count = boxes.shape[0]
    out = np.empty((count, WINDOW, WINDOW), dtype=np.uint8)
    if count == 0:
        return out
    img_h, img_w = image.shape
    padded = np.zeros((img_h + 2, img_w + 2), dtype=np.uint8)
    padded[1:-1, 1:-1] = image
    flat = padded.reshape(-1)
    stride = img_w + 2
    for start in range(0, count, _BLOCK):
        part = boxes[start : start + _BLOCK]
        side = part[:, 2].astype(np.float64)
        pos = (side / float(WINDOW))[:, None] * np.arange(WINDOW, dtype=np.float64)[None, :]
        index = np.minimum(pos.astype(np.int64), part[:, 2:3] - 2)
        weight = pos - index
        cols = np.clip(part[:, 0:1] + index, -1, img_w) + 1
        cols1 = np.clip(part[:, 0:1] + index + 1, -1, img_w) + 1
        rows = np.clip(part[:, 1:2] + index, -1, img_h) + 1
        rows1 = np.clip(part[:, 1:2] + index + 1, -1, img_h) + 1
        top = rows[:, :, None] * stride
        bottom = rows1[:, :, None] * stride
        left = cols[:, None, :]
        right = cols1[:, None, :]
        out[start : start + part.shape[0]] = _blend(
            np.take(flat, top + left).astype(np.float64),
            np.take(flat, top + right).astype(np.float64),
            np.take(flat, bottom + left).astype(np.float64),
            np.take(flat, bottom + right).astype(np.float64),
            weight[:, None, :],
            weight[:, :, None],
        )
    return out


@dataclass(frozen=True)
class LabMap:
    """LAB codes of one pyramid level plus the integrals for the window deviation."""

    codes: npt.NDArray[np.uint8]  # (height - 8, width - 8)
    integral: I64Array  # (height + 1, width + 1), zero first row and column
    square_integral: I64Array


def _integral(values: I64Array) -> I64Array:
    out = np.zeros((values.shape[0] + 1, values.shape[1] + 1), dtype=np.int64)
    np.cumsum(values, axis=0, out=out[1:, 1:])
    np.cumsum(out[1:, 1:], axis=1, out=out[1:, 1:])
    return out


def lab_feature_map(image: U8Image) -> LabMap:
    """LAB code at every position where a whole 9x9 block fits (image at least 9x9)."""
    pixels = image.astype(np.int64)
    integral = _integral(pixels)
    square_integral = _integral(pixels * pixels)
    cells = integral[3:, 3:] - integral[:-3, 3:] - integral[3:, :-3] + integral[:-3, :-3]
    rows = image.shape[0] - 8
    cols = image.shape[1] - 8
    centre = cells[3 : 3 + rows, 3 : 3 + cols]
    codes = np.zeros((rows, cols), dtype=np.uint8)
    for (dy, dx), bit in (
        ((0, 0), 0x80),
        ((0, 3), 0x40),
        ((0, 6), 0x20),
        ((3, 6), 0x08),
        ((6, 6), 0x01),
        ((6, 3), 0x02),
        ((6, 0), 0x04),
        ((3, 0), 0x10),
    ):
        codes |= np.where(centre >= cells[dy : dy + rows, dx : dx + cols], bit, 0).astype(np.uint8)
    return LabMap(codes=codes, integral=integral, square_integral=square_integral)


def _std_dev(lab: LabMap, ys: I64Array, xs: I64Array) -> F64Array:
    def window_sum(table: I64Array) -> I64Array:
        return (
            table[ys + WINDOW, xs + WINDOW]
            - table[ys, xs + WINDOW]
            - table[ys + WINDOW, xs]
            + table[ys, xs]
        )

    area = float(WINDOW * WINDOW)
    mean = window_sum(lab.integral).astype(np.float64) / area
    second = window_sum(lab.square_integral).astype(np.float64) / area
    with np.errstate(invalid="ignore"):
        return np.sqrt(second - mean * mean)


def lab_scores(
    lab: LabMap, stage: LabStage, ys: I64Array, xs: I64Array
) -> tuple[I64Array, F32Array]:
    """Windows (top-left ``ys``, ``xs``) the boosted stage accepts: their indices and scores."""
    codes = lab.codes.reshape(-1)
    stride = lab.codes.shape[1]
    base = ys * stride + xs
    alive = np.arange(base.shape[0], dtype=np.int64)
    score = np.zeros(base.shape[0], dtype=np.float32)
    offsets = stage.offset_y * stride + stage.offset_x
    for start in range(0, offsets.shape[0], LAB_GROUP):
        for i in range(start, start + LAB_GROUP):
            score = score + stage.weights[i][codes[base + offsets[i]]]
        keep = score >= stage.thresholds[start + LAB_GROUP - 1]
        if not keep.all():
            alive, base, score = alive[keep], base[keep], score[keep]
        if alive.shape[0] == 0:
            break
    keep = _std_dev(lab, ys[alive], xs[alive]) > _STD_DEV_MIN
    return alive[keep], score[keep]


def _gradients(windows: F32Array) -> tuple[F32Array, F32Array]:
    dx = np.empty_like(windows)
    dx[:, :, 1:-1] = windows[:, :, 2:] - windows[:, :, :-2]
    dx[:, :, 0] = (windows[:, :, 1] - windows[:, :, 0]) * 2
    dx[:, :, -1] = (windows[:, :, -1] - windows[:, :, -2]) * 2
    dy = np.empty_like(windows)
    dy[:, 1:-1, :] = windows[:, 2:, :] - windows[:, :-2, :]
    dy[:, 0, :] = (windows[:, 1, :] - windows[:, 0, :]) * 2
    dy[:, -1, :] = (windows[:, -1, :] - windows[:, -2, :]) * 2
    return dx, dy


def _span_sums(values: F32Array, spans: list[tuple[int, int]], axis: int) -> F32Array:
    """Sums of ``values`` over each (start, length) span of ``axis`` (spans go to that axis'
    end). One ``reduceat`` over the distinct span edges, then prefix differences."""
    edges = sorted({0} | {e for start, length in spans for e in (start, start + length)})
    starts = [e for e in edges if e < WINDOW]
    segments = np.add.reduceat(values, starts, axis=axis)
    shape = list(segments.shape)
    shape[axis] = 1
    prefix = np.concatenate(
        (np.zeros(shape, dtype=np.float32), np.cumsum(segments, axis=axis, dtype=np.float32)),
        axis=axis,
    )
    position = {edge: i for i, edge in enumerate(starts)}
    position.setdefault(WINDOW, len(starts))
    ends = [position[start + length] for start, length in spans]
    begins = [position[start] for start, _ in spans]
    out: F32Array = np.take(prefix, ends, axis=axis) - np.take(prefix, begins, axis=axis)
    return out


def _cell_sums(windows: U8Image, cells: list[tuple[int, int, int, int]]) -> I64Array:
    """``(n, len(cells), 8)`` sums of the 8 gradient channels over each (x, y, w, h) cell.

    Channels: ``dx`` and ``|dx|`` where ``dy >= 0``, the same where ``dy < 0``; ``dy`` and
    ``|dy|`` where ``dx >= 0``, the same where ``dx < 0``. The sums are done in ``f32``,
    which is exact: every partial sum is an integer below 2**24.
    """
    col_spans = sorted({(c[0], c[2]) for c in cells})
    row_spans = sorted({(c[1], c[3]) for c in cells})
    col_of = [col_spans.index((c[0], c[2])) for c in cells]
    row_of = [row_spans.index((c[1], c[3])) for c in cells]
    count = windows.shape[0]
    out = np.empty((count, len(cells), _CHANNELS), dtype=np.int64)
    for start in range(0, count, _BLOCK):
        block = windows[start : start + _BLOCK].astype(np.float32)
        n = block.shape[0]
        dx, dy = _gradients(block)
        dy_pos = (dy >= 0).astype(np.float32)
        dx_pos = (dx >= 0).astype(np.float32)
        abs_dx = np.abs(dx)
        abs_dy = np.abs(dy)
        # channels 2, 3, 6, 7 start as totals; the negative-sign parts are subtracted below
        maps = (dx * dy_pos, abs_dx * dy_pos, dx, abs_dx, dy * dx_pos, abs_dy * dx_pos, dy, abs_dy)
        picked = np.empty((n, len(cells), _CHANNELS), dtype=np.float32)
        for channel, image in enumerate(maps):
            sums = _span_sums(_span_sums(image, col_spans, axis=2), row_spans, axis=1)
            picked[:, :, channel] = sums[:, row_of, col_of]
        picked[:, :, 2] -= picked[:, :, 0]
        picked[:, :, 3] -= picked[:, :, 1]
        picked[:, :, 6] -= picked[:, :, 4]
        picked[:, :, 7] -= picked[:, :, 5]
        out[start : start + n] = picked.astype(np.int64)
    return out


def _normalise(vectors: I64Array) -> F32Array:
    """rustface's L2 normalisation: ``i32`` squares (wrapping), ``f64`` sum, ``f32`` norm."""
    squares = (vectors * vectors + (1 << 31)) % (1 << 32) - (1 << 31)
    total = squares.astype(np.float64).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.sqrt(total).astype(np.float32)
        out: F32Array = vectors.astype(np.float32) / norm[:, None]
    out[total == 0.0] = 0.0
    return out


def surf_features(windows: U8Image, feature_ids: Sequence[int]) -> F32Array:
    """The MLP input for each 40x40 window: normalised features of ``feature_ids`` in order."""
    cells: list[tuple[int, int, int, int]] = []
    for feature_id in feature_ids:
        patch = SURF_POOL[feature_id]
        cell_w = patch.width // _CELLS
        cell_h = patch.height // _CELLS
        for row in range(_CELLS):
            for col in range(_CELLS):
                cells.append((patch.x + col * cell_w, patch.y + row * cell_h, cell_w, cell_h))
    sums = _cell_sums(windows, cells)
    per_feature = _CELLS * _CELLS
    parts = [
        _normalise(sums[:, i : i + per_feature, :].reshape(sums.shape[0], SURF_FEATURE_DIM))
        for i in range(0, len(cells), per_feature)
    ]
    if not parts:
        return np.zeros((windows.shape[0], 0), dtype=np.float32)
    return np.concatenate(parts, axis=1)


def _dense(inputs: F32Array, layer: MlpLayer) -> F32Array:
    """``inputs @ weights.T + biases`` in ``f32``, each dot product summed left to right."""
    count = inputs.shape[0]
    columns = np.ascontiguousarray(layer.weights.T)  # (in, out): row i = weight i of each unit
    acc = np.zeros((count, columns.shape[1]), dtype=np.float32)
    term = np.empty_like(acc)
    for i in range(inputs.shape[1]):
        np.multiply(inputs[:, i : i + 1], columns[i][None, :], out=term)
        acc += term
    acc += layer.biases[None, :]
    return acc


def _sigmoid(x: F32Array) -> F32Array:
    # expf correctly rounded: exp in f64, then one rounding to f32.
    e = np.exp(-x.astype(np.float64)).astype(np.float32)
    with np.errstate(over="ignore"):
        out: F32Array = _ONE / (_ONE + e)
    return out


def mlp_forward(inputs: F32Array, layers: Sequence[MlpLayer]) -> F32Array:
    """Run the MLP: ReLU on every hidden layer, sigmoid on the output layer."""
    values = inputs
    for layer in layers[:-1]:
        values = _dense(values, layer)
        values = np.where(values > 0.0, values, np.float32(0.0)).astype(np.float32)
    with np.errstate(over="ignore"):
        return _sigmoid(_dense(values, layers[-1]))
