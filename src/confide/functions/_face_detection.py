"""``builtin-face-detection`` with OpenCV's Haar cascade (Teaclave uses rustface).

confide cannot ship rustface's SeetaFace model, so the detector differs; the
argument contract and the result shape are Teaclave's. Parameter mapping:

================================  ==============================================
rustface argument                 OpenCV ``detectMultiScale3``
================================  ==============================================
``min_face_size`` (≥ 20, def 20)  ``minSize=(m, m)``
``max_face_size``                 ``maxSize=(M, M)`` (capped by the image size)
``pyramid_scale_factor`` f        ``scaleFactor = 1 / f`` (0.8 → 1.25)
``score_thresh`` t (> 0, def 2)   ``minNeighbors = max(1, round(1.5 · t))``
``window_size`` (≥ 20)            validated only (the cascade window is 24x24)
``slide_window_step_x/y`` (> 0)   validated only (OpenCV steps 1-2 px per scale)
================================  ==============================================

``score`` in the result is OpenCV's level weight; ``roll``/``pitch``/``yaw``
are 0.0 (rustface's FuSt detector reports them as 0.0 too).
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

from confide.invocation import FunctionError

from ._args import Field, Kind, decode_arguments
from ._context import FunctionContext
from ._rust import json_f64

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
_CASCADE = "haarcascade_frontalface_default.xml"
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


def _check_options(args: dict[str, object]) -> None:
    """rustface panics on these values; confide refuses them cleanly."""
    window = args["window_size"]
    if isinstance(window, int) and window < 20:
        raise FunctionError("Invalid window_size: must be at least 20")
    for key in ("slide_window_step_x", "slide_window_step_y"):
        if args[key] == 0:
            raise FunctionError(f"Invalid {key}: must be positive")
    min_face = args["min_face_size"]
    if isinstance(min_face, int) and min_face < 20:
        raise FunctionError("Invalid min_face_size: must be at least 20")
    factor = args["pyramid_scale_factor"]
    if factor is not None and not 0.01 <= float(factor) <= 0.99:  # type: ignore[arg-type]
        raise FunctionError("Invalid pyramid_scale_factor: must be in [0.01, 0.99]")
    thresh = args["score_thresh"]
    if thresh is not None and not float(thresh) > 0:  # type: ignore[arg-type]
        raise FunctionError("Invalid score_thresh: must be positive")


def _face_json(x: int, y: int, w: int, h: int, score: float) -> str:
    return (
        f'{{"bbox":{{"x":{x},"y":{y},"width":{w},"height":{h}}},'
        f'"roll":0.0,"pitch":0.0,"yaw":0.0,"score":{json_f64(score)}}}'
    )


def run(ctx: FunctionContext) -> str:
    """Detect faces in the ``image`` argument; return them as a JSON array.

    Raises:
        FunctionError: ``Cannot deserialize arguments``, image format/decode
            errors, out-of-range detector options, images over the pixel cap.
    """
    args = decode_arguments(ctx.arguments, _FIELDS)
    _check_options(args)
    data: bytes = args["image"]
    width, height = _image_size(data)
    if width <= 0 or height <= 0 or width * height > ctx.limits.builtin_max_image_pixels:
        raise FunctionError(f"Image too large or empty: {width}x{height}")
    gray = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise FunctionError("Image decode error: could not decode image")
    ctx.check_cancel()
    min_face = args["min_face_size"] if args["min_face_size"] is not None else 20
    max_face = min(gray.shape[0], gray.shape[1])
    if args["max_face_size"] is not None:
        max_face = min(max_face, args["max_face_size"])
    factor = 0.8 if args["pyramid_scale_factor"] is None else float(args["pyramid_scale_factor"])
    thresh = 2.0 if args["score_thresh"] is None else float(args["score_thresh"])
    if max_face < min_face:
        return "[]"
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + _CASCADE)  # type: ignore[attr-defined]
    if cascade.empty():
        raise FunctionError("Face detector model not available")
    boxes, _levels, weights = cascade.detectMultiScale3(
        gray,
        scaleFactor=1.0 / factor,
        minNeighbors=max(1, round(1.5 * thresh)),
        minSize=(min_face, min_face),
        maxSize=(max_face, max_face),
        outputRejectLevels=True,
    )
    faces = [
        _face_json(int(x), int(y), int(w), int(h), float(s))
        for (x, y, w, h), s in zip(
            np.asarray(boxes).reshape(-1, 4).tolist(),
            np.asarray(weights, dtype=np.float64).reshape(-1).tolist(),
            strict=True,
        )
    ]
    return "[" + ",".join(faces) + "]"
