"""builtin-face-detection: OpenCV stand-in for rustface, Teaclave's contract."""

from __future__ import annotations

import json
from collections.abc import Callable

import cv2
import numpy as np
import pytest

from confide.config import Limits
from confide.executors.builtin import BuiltinExecutor
from confide.invocation import FunctionError

from .conftest import RunBuiltin

Vec = Callable[[str], bytes]

TEACLAVE_TEST_ARGS = {
    "min_face_size": 20,
    "score_thresh": 2.0,
    "pyramid_scale_factor": 0.8,
    "slide_window_step_x": 4,
    "slide_window_step_y": 4,
}
#: Faces confide finds in input.jpg with Teaclave's test arguments (Teaclave/rustface: 29).
CONFIDE_FACE_COUNT = 29


def _image_arg(data: bytes) -> list[int]:
    return list(data)


def test_detects_faces_in_teaclave_fixture(run_builtin: RunBuiltin, fvec: Vec) -> None:
    args = {**TEACLAVE_TEST_ARGS, "image": _image_arg(fvec("face_detection/input.jpg"))}
    faces = json.loads(run_builtin("builtin-face-detection", args).result)
    assert len(faces) == CONFIDE_FACE_COUNT
    for face in faces:
        assert set(face) == {"bbox", "roll", "pitch", "yaw", "score"}
        assert set(face["bbox"]) == {"x", "y", "width", "height"}
        assert face["bbox"]["width"] >= 20


def test_blank_image_has_no_faces(run_builtin: RunBuiltin) -> None:
    ok, png = cv2.imencode(".png", np.full((64, 64), 128, dtype=np.uint8))
    assert ok
    assert (
        run_builtin("builtin-face-detection", {"image": _image_arg(png.tobytes())}).result == "[]"
    )


def test_rejects_unknown_image_format(run_builtin: RunBuiltin) -> None:
    with pytest.raises(FunctionError, match=r"^The image format could not be determined$"):
        run_builtin("builtin-face-detection", {"image": [1, 2, 3, 4]})


def test_rejects_corrupt_jpeg(run_builtin: RunBuiltin, fvec: Vec) -> None:
    data = fvec("face_detection/input.jpg")[:600]
    with pytest.raises(FunctionError, match=r"^Image decode error"):
        run_builtin("builtin-face-detection", {"image": _image_arg(data)})


def test_rejects_image_over_pixel_cap_before_decoding(fvec: Vec, run_builtin: RunBuiltin) -> None:
    executor = BuiltinExecutor(Limits(builtin_max_image_pixels=1666 * 1136 - 1))
    args = {"image": _image_arg(fvec("face_detection/input.jpg"))}
    with pytest.raises(FunctionError, match=r"^Image too large"):
        run_builtin("builtin-face-detection", args, executor=executor)


@pytest.mark.parametrize(
    "bad",
    [
        {"min_face_size": 19},
        {"window_size": 10},
        {"slide_window_step_x": 0},
        {"pyramid_scale_factor": 1.0},
        {"score_thresh": 0.0},
    ],
)
def test_rustface_panics_become_clean_errors(
    run_builtin: RunBuiltin, bad: dict[str, object]
) -> None:
    with pytest.raises(FunctionError, match=r"^Invalid "):
        run_builtin("builtin-face-detection", {"image": [0xFF, 0xD8], **bad})


@pytest.mark.parametrize("image", ["aGVsbG8=", [256], [-1], None])
def test_rejects_image_that_is_not_a_byte_array(run_builtin: RunBuiltin, image: object) -> None:
    with pytest.raises(FunctionError, match=r"^Cannot deserialize arguments$"):
        run_builtin("builtin-face-detection", {"image": image})
