"""SeetaFace FuSt pieces: the vectorised code against plain per-element references.

Each reference below is a direct transcription of the rule (one pixel, one box, one
product at a time), so a vectorisation or ordering mistake in confide's numpy code shows
up as a difference. The model reader is tested against malformed files.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Callable
from importlib import resources

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confide.functions import _seeta_features as feat
from confide.functions._face_detection import _grey, _model
from confide.functions._seeta_detector import non_maximum_suppression
from confide.functions._seeta_model import (
    LabStage,
    MlpLayer,
    MlpStage,
    SeetaModelError,
    parse_model,
)

Vec = Callable[[str], bytes]

_images = st.integers(12, 30).flatmap(
    lambda h: st.integers(12, 30).flatmap(
        lambda w: st.binary(min_size=h * w, max_size=h * w).map(
            lambda b: np.frombuffer(b, dtype=np.uint8).reshape(h, w)
        )
    )
)


def _lab_reference(image: np.ndarray) -> np.ndarray:
    img = image.astype(np.int64)
    h, w = img.shape
    out = np.zeros((h - 8, w - 8), dtype=np.uint8)
    bits = [(0, 0, 0x80), (0, 3, 0x40), (0, 6, 0x20), (3, 6, 0x08),
            (6, 6, 0x01), (6, 3, 0x02), (6, 0, 0x04), (3, 0, 0x10)]  # fmt: skip
    for r in range(h - 8):
        for c in range(w - 8):
            centre = img[r + 3 : r + 6, c + 3 : c + 6].sum()
            code = 0
            for dy, dx, bit in bits:
                if centre >= img[r + dy : r + dy + 3, c + dx : c + dx + 3].sum():
                    code |= bit
            out[r, c] = code
    return out


@settings(max_examples=30, deadline=None)
@given(_images)
def test_lab_codes_match_per_pixel_rule(image: np.ndarray) -> None:
    assert np.array_equal(feat.lab_feature_map(image).codes, _lab_reference(image))


def _resize_reference(image: np.ndarray, width: int, height: int) -> np.ndarray:
    src_h, src_w = image.shape
    out = np.zeros((height, width), dtype=np.uint8)
    sx, sy = src_w / width, src_h / height
    for y in range(height):
        for x in range(width):
            fx, fy = sx * x, sy * y
            nx, ny = min(int(fx), src_w - 2), min(int(fy), src_h - 2)
            wx, wy = fx - nx, fy - ny
            d1, d2 = float(image[ny, nx]), float(image[ny, nx + 1])
            d3, d4 = float(image[ny + 1, nx]), float(image[ny + 1, nx + 1])
            v = (1.0 - wy) * ((1.0 - wx) * d1 + wx * d2) + wy * ((1.0 - wx) * d3 + wx * d4)
            out[y, x] = int(min(max(v, 0.0), 255.0))  # Rust's saturating `as u8`
    return out


@settings(max_examples=30, deadline=None)
@given(_images, st.integers(2, 45), st.integers(2, 45))
def test_resize_matches_rustfaces_formula(image: np.ndarray, width: int, height: int) -> None:
    assert np.array_equal(
        feat.resize(image, width, height), _resize_reference(image, width, height)
    )


def test_upscaling_extrapolates_and_saturates_like_rust_casts() -> None:
    # Enlarging clamps the source index to len-2, so the last weights exceed 1 and the
    # value leaves 0..255; modern Rust saturates (rustface builds before Rust 1.45 wrapped).
    image = np.array([[0, 0, 0, 200, 255], [0, 0, 0, 200, 255]], dtype=np.uint8)
    out = feat.resize(image, 40, 2)
    assert out.max() == 255 and out[0, -1] == 255
    rising = np.array([[255, 255, 255, 60, 0]] * 2, dtype=np.uint8)
    assert feat.resize(rising, 40, 2)[0, -1] == 0


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.integers(-30, 90), st.integers(-30, 90), st.integers(2, 90)),
                min_size=1, max_size=6))  # fmt: skip
def test_window_crops_equal_zero_padded_crop_then_resize(boxes: list[tuple[int, int, int]]) -> None:
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, size=(70, 80), dtype=np.uint8)
    got = feat.window_crops(image, np.asarray(boxes, dtype=np.int64))
    for k, (x, y, side) in enumerate(boxes):
        crop = np.zeros((side, side), dtype=np.uint8)
        for r in range(side):
            for c in range(side):
                if 0 <= y + r < 70 and 0 <= x + c < 80:
                    crop[r, c] = image[y + r, x + c]
        assert np.array_equal(got[k], _resize_reference(crop, 40, 40)), (x, y, side)


def _surf_reference(window: np.ndarray, feature_ids: list[int]) -> np.ndarray:
    img = window.astype(np.int64)
    n = 40
    dx = np.zeros((n, n), dtype=np.int64)
    dy = np.zeros((n, n), dtype=np.int64)
    for r in range(n):
        for c in range(n):
            dx[r, c] = (
                (img[r, c + 1] - img[r, c - 1])
                if 0 < c < n - 1
                else (
                    2 * (img[r, 1] - img[r, 0]) if c == 0 else 2 * (img[r, n - 1] - img[r, n - 2])
                )
            )
            dy[r, c] = (
                (img[r + 1, c] - img[r - 1, c])
                if 0 < r < n - 1
                else (
                    2 * (img[1, c] - img[0, c]) if r == 0 else 2 * (img[n - 1, c] - img[n - 2, c])
                )
            )
    out: list[np.float32] = []
    for fid in feature_ids:
        p = feat.SURF_POOL[fid]
        cw, ch = p.width // 2, p.height // 2
        vec: list[int] = []
        for cy in range(2):
            for cx in range(2):
                s = [0] * 8
                for r in range(p.y + cy * ch, p.y + (cy + 1) * ch):
                    for c in range(p.x + cx * cw, p.x + (cx + 1) * cw):
                        gx, gy = int(dx[r, c]), int(dy[r, c])
                        base = 0 if gy >= 0 else 2
                        s[base] += gx
                        s[base + 1] += abs(gx)
                        base = 4 if gx >= 0 else 6
                        s[base] += gy
                        s[base + 1] += abs(gy)
                vec += s
        total = sum(float(np.int32(np.int64(v) * v)) for v in vec)  # i32 square, wrapping
        norm = np.float32(np.sqrt(total))
        out += [np.float32(v) / norm if total != 0 else np.float32(0) for v in vec]
    return np.asarray(out, dtype=np.float32)


@settings(max_examples=8, deadline=None)
@given(st.binary(min_size=1600, max_size=1600), st.lists(
    st.integers(0, len(feat.SURF_POOL) - 1), min_size=1, max_size=4))  # fmt: skip
def test_surf_features_match_per_pixel_rule(raw: bytes, ids: list[int]) -> None:
    window = np.frombuffer(raw, dtype=np.uint8).reshape(1, 40, 40)
    got = feat.surf_features(window, ids)[0]
    assert np.array_equal(got, _surf_reference(window[0], ids))


def test_surf_features_of_a_flat_window_are_zero() -> None:
    window = np.full((1, 40, 40), 77, dtype=np.uint8)
    assert not feat.surf_features(window, [0, 5]).any()


def test_surf_pool_is_seetafaces() -> None:
    assert len(feat.SURF_POOL) >= 54  # the frontal model uses ids up to 54
    assert feat.SURF_POOL[0] == feat.SurfPatch(0, 0, 16, 16)
    assert all(p.x + p.width <= 40 and p.y + p.height <= 40 for p in feat.SURF_POOL)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 5), st.integers(1, 9), st.integers(1, 4), st.integers(0, 2**31))
def test_dense_layer_sums_left_to_right_in_f32(n: int, d_in: int, d_out: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d_in)).astype(np.float32) * np.float32(1e3)
    layer = MlpLayer(rng.normal(size=(d_out, d_in)).astype(np.float32),
                     rng.normal(size=d_out).astype(np.float32))  # fmt: skip
    got = feat._dense(x, layer)
    for i in range(n):
        for o in range(d_out):
            acc = np.float32(0.0)
            for k in range(d_in):
                acc = np.float32(acc + np.float32(x[i, k] * layer.weights[o, k]))
            assert got[i, o] == np.float32(acc + layer.biases[o])


def _nms_reference(boxes: list[tuple[int, int, int, int]], scores: list[float], thr: float
                   ) -> tuple[list[tuple[int, int, int, int]], list[float]]:  # fmt: skip
    order = sorted(range(len(boxes)), key=lambda i: -scores[i])  # stable
    b = [boxes[i] for i in order]
    s = [scores[i] for i in order]
    merged = [False] * len(b)
    kept, sums = [], []
    for i in range(len(b)):
        if merged[i]:
            continue
        merged[i] = True
        x1, y1, w1, h1 = b[i]
        total = s[i]
        for j in range(i + 1, len(b)):
            if merged[j]:
                continue
            x2, y2, w2, h2 = b[j]
            w = min(x1 + w1 - 1, x2 + w2 - 1) - max(x1, x2) + 1
            h = min(y1 + h1 - 1, y2 + h2 - 1) - max(y1, y2) + 1
            if w <= 0 or h <= 0:
                continue
            inter = np.float32(w * h)
            union = np.float32(np.float32(w1 * h1) + np.float32(w2 * h2)) - inter
            if np.float32(inter / union) > np.float32(thr):
                merged[j] = True
                total += s[j]
        kept.append(b[i])
        sums.append(total)
    return kept, sums


_box = st.tuples(st.integers(-20, 200), st.integers(-20, 300), st.integers(1, 60)).map(
    lambda t: (t[0], t[1], t[2], t[2])
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_box, st.sampled_from([0.5, 0.7, 0.9, 1.25, 2.0])), max_size=300),
       st.sampled_from([0.3, 0.8]))  # fmt: skip
def test_nms_equals_rustfaces_greedy_loop(items: list[tuple[tuple[int, int, int, int], float]],
                                          thr: float) -> None:  # fmt: skip
    boxes = [b for b, _ in items]
    scores = [s for _, s in items]
    got_boxes, got_scores = non_maximum_suppression(
        np.asarray(boxes, dtype=np.int64).reshape(-1, 4), np.asarray(scores), thr
    )
    want_boxes, want_scores = _nms_reference(boxes, scores, thr)
    assert [tuple(b) for b in got_boxes.tolist()] == want_boxes
    assert got_scores.tolist() == want_scores


def test_nms_keeps_the_best_box_with_the_summed_score() -> None:
    boxes = np.array([[0, 0, 40, 40], [1, 0, 40, 40], [100, 100, 40, 40]], dtype=np.int64)
    kept, scores = non_maximum_suppression(boxes, np.array([0.6, 0.9, 0.7]), 0.8)
    assert kept.tolist() == [[1, 0, 40, 40], [100, 100, 40, 40]]
    assert scores.tolist() == [0.9 + 0.6, 0.7]


# --- the model file ----------------------------------------------------------------


def _shipped() -> bytes:
    return resources.files("confide.functions").joinpath(
        "data", "seeta_fd_frontal_v1.0.bin").read_bytes()  # fmt: skip


def test_shipped_model_is_seetafaces_frontal_model_with_its_licence() -> None:
    data = _shipped()
    assert hashlib.sha256(data).hexdigest() == (
        "c4619d066ed35e84d9a8e842860b0dff567aba0cbb139881075538761db3ff5d"
    )
    licence = resources.files("confide.functions").joinpath(
        "data", "LICENSE-seeta_fd_frontal.txt").read_text()  # fmt: skip
    assert "BSD 2-Clause" in licence and "Chinese Academy of Sciences" in licence


def test_shipped_model_has_the_funnel_structure() -> None:
    model = _model()
    first, second, third = model.hierarchies
    assert len(first) == 3 and all(isinstance(c.stages[0], LabStage) for c in first)
    assert [len(c.stages) for c in second] == [2] and second[0].window_sources == (0, 1, 2)
    assert [len(c.stages) for c in third] == [1] and third[0].window_sources == (0,)
    last = third[0].stages[0]
    assert isinstance(last, MlpStage)
    assert [layer.weights.shape for layer in last.layers] == [
        (256, 512), (128, 256), (64, 128), (4, 64)]  # fmt: skip


def _parse(data: bytes) -> None:
    parse_model(data, len(feat.SURF_POOL), feat.SURF_FEATURE_DIM)


def _i32(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}i", *values)


def _lab(offset: int = 0, bins: int = 255) -> bytes:
    n = 10
    return (_i32(0, n, bins) + _i32(*([offset] * 2 * n)) + bytes(4 * n)
            + bytes(4 * n * (bins + 1)))  # fmt: skip


def _mlp(ids: tuple[int, ...] = (1,), in_dim: int = 32, out_dim: int = 4) -> bytes:
    return (_i32(1, 2, len(ids)) + _i32(*ids) + struct.pack("<f", 0.5) + _i32(in_dim, out_dim)
            + bytes(4 * in_dim * out_dim) + bytes(4 * out_dim))  # fmt: skip


def _model_bytes(lab: bytes | None = None, mlp: bytes | None = None, src: int = 0) -> bytes:
    return (_i32(2, 1, 1) + (lab or _lab()) + _i32(0)
            + _i32(1, 1) + (mlp or _mlp()) + _i32(1, src))  # fmt: skip


def test_minimal_model_parses() -> None:
    _parse(_model_bytes())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_shipped()[:-4], "truncated"),
        (_shipped() + b"\0\0\0\0", "trailing"),
        (_model_bytes(lab=_i32(7)), "unknown classifier"),
        (_model_bytes(lab=_lab(offset=32)), "LAB offset"),
        (_model_bytes(lab=_lab(bins=127)), "LAB classifier shape"),
        (_model_bytes(mlp=_mlp(ids=(0,))), "feature id"),
        (_model_bytes(mlp=_mlp(ids=(200,))), "number of SURF features|feature id"),
        (_model_bytes(mlp=_mlp(in_dim=31)), "does not fit"),
        (_model_bytes(mlp=_mlp(out_dim=3)), "not 4 wide"),
        (_model_bytes(src=1), "window source"),
        (_i32(-1), "number of hierarchies"),
        (_i32(1, 1, 1) + _mlp() + _i32(0), "single LAB stages"),
    ],
)
def test_malformed_model_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(SeetaModelError, match=message):
        _parse(data)


# --- decoding to grey --------------------------------------------------------------


def _png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()


def test_colour_becomes_grey_with_the_image_crates_luma() -> None:
    bgr = np.zeros((2, 3, 3), dtype=np.uint8)
    bgr[0, 0] = (30, 200, 10)  # B, G, R
    bgr[1, 2] = (255, 255, 255)
    grey = _grey(_png(bgr))
    want = np.float32(0.2126) * 10 + np.float32(0.7152) * 200 + np.float32(0.0722) * 30
    assert grey[0, 0] == int(np.float32(want)) == 147  # truncated, not rounded
    assert grey[1, 2] == 255 and grey[0, 1] == 0


def _grey_alpha_png(grey: np.ndarray) -> bytes:
    """A PNG of colour type 4 (grey + alpha), which OpenCV expands to four channels."""
    h, w = grey.shape
    rows = b"".join(b"\0" + bytes(v for x in row for v in (int(x), 200)) for row in grey)

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", w, h, 8, 4, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))  # fmt: skip


def test_grey_alpha_png_keeps_its_grey_values() -> None:
    # Through the f32 luma of three equal channels 23 of 256 values would drop by one.
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert np.array_equal(_grey(_grey_alpha_png(grey)), grey)


def test_grey_and_16_bit_images_keep_their_values() -> None:
    grey8 = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    assert np.array_equal(_grey(_png(grey8)), grey8)
    grey16 = grey8.astype(np.uint16) * 257
    assert np.array_equal(_grey(_png(grey16)), grey8)
