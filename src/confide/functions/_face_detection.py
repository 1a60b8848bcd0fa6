"""``builtin-face-detection``: SeetaFace's funnel cascade, as Teaclave's rustface runs it.

Teaclave decodes the image with the ``image`` crate, converts it to grey with
``to_luma`` (``0.2126 R + 0.7152 G + 0.0722 B`` in ``f32``, truncated) and runs
rustface's ``FuStDetector`` with SeetaFace's frontal model. confide decodes with
OpenCV (EXIF orientation ignored, as the ``image`` crate does), applies the same grey
conversion and runs :mod:`._seeta_detector` with the same model, which ships in
``confide/functions/data/`` under its BSD-2-Clause licence.

Arguments are rustface's setters: ``window_size`` (>= 20) and ``min_face_size``
(>= 20) are validated and otherwise have no effect (rustface searches from scale 1
with its fixed 40-pixel window); ``slide_window_step_x``/``_y`` apply only when both
are given (each > 0); ``max_face_size`` bounds the smallest pyramid scale;
``pyramid_scale_factor`` in [0.01, 0.99] (``f32``); ``score_thresh`` > 0 drops faces
whose summed score is lower. Omitted values take ``FuStDetector::new``'s defaults
(steps 4, factor 0.8, threshold 3.85). ``roll``/``pitch``/``yaw`` are 0.0, as
rustface reports them.
"""

from __future__ import annotations

import functools
import struct
from importlib import resources

import cv2
import numpy as np
import numpy.typing as npt

from confide.invocation import FunctionError

from ._args import Field, Kind, decode_arguments
from ._context import FunctionContext
from ._rust import json_f64
from ._seeta_detector import DetectorOptions, Face, detect_faces
from ._seeta_features import SURF_FEATURE_DIM, SURF_POOL
from ._seeta_model import SeetaModel, SeetaModelError, parse_model

__all__ = ["NAME", "run"]

NAME = "builtin-face-detection"

_FIELDS = (
    Field("image", Kind.BYTES),
    Field("window_size", Kind.U32, optional=True),
    Field("slide_window_step_x", Kind.U32, optional=True),
    Field("slide_window_step_y", Kind.U32, optional=True),
    Field("min_face_size", Kind.U32, optional=True),
    Field("max_face_size", Kind.U32, optional=True),
    Field("pyramid_scale_factor", Kind.F32, optional=True),
    Field("score_thresh", Kind.F64, optional=True),
)
_MODEL_FILE = "seeta_fd_frontal_v1.0.bin"
_LUMA = (np.float32(0.2126), np.float32(0.7152), np.float32(0.0722))
_MIN_FACTOR = np.float32(0.01)
_MAX_FACTOR = np.float32(0.99)
_UNKNOWN_FORMAT = "The image format could not be determined"
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: bytes) -> tuple[int, int]:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise FunctionError("Image decode error: bad JPEG marker")
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _SOF_MARKERS and pos + 9 <= len(data):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    raise FunctionError("Image decode error: no JPEG frame header")


def _image_size(data: bytes) -> tuple[int, int]:
    """Width and height from the header, before any pixel is decoded."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    if data.startswith(b"BM") and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return abs(width), abs(height)
    raise FunctionError(_UNKNOWN_FORMAT)


def _check_options(args: dict[str, object]) -> DetectorOptions:
    """rustface panics on these values; confide refuses them cleanly."""
    window = args["window_size"]
    if isinstance(window, int) and window < 20:
        raise FunctionError("Invalid window_size: must be at least 20")
    defaults = DetectorOptions()
    step_x, step_y = args["slide_window_step_x"], args["slide_window_step_y"]
    if not (isinstance(step_x, int) and isinstance(step_y, int)):
        step_x, step_y = defaults.step_x, defaults.step_y  # Teaclave sets both or neither
    for key, step in (("slide_window_step_x", step_x), ("slide_window_step_y", step_y)):
        if step == 0:
            raise FunctionError(f"Invalid {key}: must be positive")
    min_face = args["min_face_size"]
    if isinstance(min_face, int) and min_face < 20:
        raise FunctionError("Invalid min_face_size: must be at least 20")
    factor = args["pyramid_scale_factor"]
    if factor is None:
        factor = np.float32(defaults.scale_factor)
    elif not _MIN_FACTOR <= factor <= _MAX_FACTOR:  # type: ignore[operator]
        raise FunctionError("Invalid pyramid_scale_factor: must be in [0.01, 0.99]")
    thresh = args["score_thresh"]
    if thresh is None:
        thresh = defaults.score_thresh
    elif not float(thresh) > 0:  # type: ignore[arg-type]
        raise FunctionError("Invalid score_thresh: must be positive")
    max_face = args["max_face_size"]
    return DetectorOptions(
        step_x=step_x,
        step_y=step_y,
        max_face_size=max_face if isinstance(max_face, int) else 0,
        scale_factor=float(factor),  # type: ignore[arg-type]
        score_thresh=float(thresh),  # type: ignore[arg-type]
    )


@functools.cache
def _model() -> SeetaModel:
    """SeetaFace's frontal model, shipped in the package (parsed once per process)."""
    try:
        data = resources.files("confide.functions").joinpath("data", _MODEL_FILE).read_bytes()
        return parse_model(data, len(SURF_POOL), SURF_FEATURE_DIM)
    except (OSError, SeetaModelError) as exc:
        raise FunctionError("Face detector model not available") from exc


def _grey(data: bytes) -> npt.NDArray[np.uint8]:
    """Decode like the ``image`` crate and convert to grey like its ``to_luma``."""
    decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise FunctionError("Image decode error: could not decode image")
    if decoded.dtype == np.uint16:
        image: npt.NDArray[np.uint8] = (decoded.astype(np.uint16) >> 8).astype(np.uint8)
    elif decoded.dtype == np.uint8:
        image = decoded.astype(np.uint8, copy=False)
    else:
        raise FunctionError("Image decode error: unsupported sample type")
    if image.ndim == 2:
        return np.ascontiguousarray(image)
    grey_png = data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 25 and data[25] in (0, 4)
    if image.shape[2] < 3 or grey_png:  # grey (+ alpha): the image crate keeps the luma
        return np.ascontiguousarray(image[:, :, 0])
    blue, green, red = (image[:, :, i].astype(np.float32) for i in range(3))
    luma = _LUMA[0] * red + _LUMA[1] * green + _LUMA[2] * blue
    grey: npt.NDArray[np.uint8] = luma.astype(np.uint8)
    return grey


def _face_json(face: Face) -> str:
    return (
        f'{{"bbox":{{"x":{face.x},"y":{face.y},"width":{face.width},"height":{face.height}}},'
        f'"roll":0.0,"pitch":0.0,"yaw":0.0,"score":{json_f64(face.score)}}}'
    )


def run(ctx: FunctionContext) -> str:
    """Detect faces in the ``image`` argument; return them as a JSON array.

    Raises:
        FunctionError: ``Cannot deserialize arguments``, image format/decode
            errors, out-of-range detector options, images over the pixel cap.
    """
    args = decode_arguments(ctx.arguments, _FIELDS)
    options = _check_options(args)
    data: bytes = args["image"]
    width, height = _image_size(data)
    if width <= 0 or height <= 0 or width * height > ctx.limits.builtin_max_image_pixels:
        raise FunctionError(f"Image too large or empty: {width}x{height}")
    grey = _grey(data)
    if grey.shape[0] * grey.shape[1] > ctx.limits.builtin_max_image_pixels:
        raise FunctionError(f"Image too large or empty: {grey.shape[1]}x{grey.shape[0]}")
    ctx.check_cancel()
    faces = detect_faces(grey, _model(), options, ctx.check_cancel)
    return "[" + ",".join(_face_json(face) for face in faces) + "]"
