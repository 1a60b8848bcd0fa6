"""builtin-face-detection: SeetaFace's funnel cascade with rustface's semantics."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import pytest

from confide.config import Limits
from confide.executors import apply_caps
from confide.executors.builtin import BuiltinExecutor
from confide.invocation import FunctionError, FunctionSpec, Invocation

from ._fakes import MemoryTaskIO
from .conftest import RunBuiltin

Vec = Callable[[str], bytes]

TEACLAVE_TEST_ARGS = {
    "min_face_size": 20,
    "score_thresh": 2.0,
    "pyramid_scale_factor": 0.8,
    "slide_window_step_x": 4,
    "slide_window_step_y": 4,
}
#: rustface's boxes for input.jpg with Teaclave's test arguments, in rustface's order.
#: Produced by a rustface build (the ``rustface`` 0.1.0 wheel on PyPI: Python bindings to
#: atomashpolskiy/rustface built in January 2018) fed the same grey image confide computes
#: (``_grey``: OpenCV decode, then the ``image`` crate's ``to_luma``). Teaclave: 29 faces.
RUSTFACE_BOXES = [
    (1135, 95, 53, 53), (613, 97, 52, 52), (1373, 41, 49, 49), (1258, 207, 62, 62),
    (865, 250, 62, 62), (566, 198, 58, 58), (1359, 260, 53, 53), (766, 190, 57, 57),
    (283, 258, 62, 62), (379, 194, 59, 59), (107, 253, 55, 55), (1489, 280, 53, 53),
    (210, 210, 55, 55), (1283, 98, 44, 44), (1418, 209, 59, 59), (902, 96, 45, 45),
    (1082, 200, 54, 54), (376, 84, 47, 47), (921, 189, 54, 54), (46, 194, 58, 58),
    (468, 128, 48, 48), (1164, 252, 57, 57), (662, 267, 55, 55), (1042, 249, 63, 63),
    (463, 259, 55, 55), (1434, 92, 59, 59), (238, 40, 56, 56), (761, 120, 57, 57),
    (1015, 107, 51, 51),
]  # fmt: skip


def _image_arg(data: bytes) -> list[int]:
    return list(data)


def _faces(run_builtin: RunBuiltin, fvec: Vec, **extra: object) -> list[dict[str, Any]]:
    args = {**TEACLAVE_TEST_ARGS, **extra, "image": _image_arg(fvec("face_detection/input.jpg"))}
    args = {k: v for k, v in args.items() if v is not None}
    faces: list[dict[str, Any]] = json.loads(run_builtin("builtin-face-detection", args).result)
    return faces


def _box(face: dict[str, Any]) -> tuple[int, int, int, int]:
    b = face["bbox"]
    return (b["x"], b["y"], b["width"], b["height"])


@pytest.fixture(scope="module")
def fixture_faces(fvec: Vec) -> list[dict[str, Any]]:
    """The fixture's faces with Teaclave's test arguments (run once for this module)."""
    args = {**TEACLAVE_TEST_ARGS, "image": _image_arg(fvec("face_detection/input.jpg"))}
    invocation = Invocation(
        task_id="task-1",
        function=FunctionSpec("fn-1", "builtin-face-detection", "builtin", b""),
        arguments=args,
        io=MemoryTaskIO(None, ()),
        log=lambda _line: None,
        cancel=threading.Event(),
    )
    faces: list[dict[str, Any]] = json.loads(
        BuiltinExecutor().run(apply_caps(invocation, Limits()))
    )
    return faces


def test_fixture_gives_rustfaces_boxes_in_rustfaces_order(
    fixture_faces: list[dict[str, Any]],
) -> None:
    assert len(fixture_faces) == 29
    assert [_box(f) for f in fixture_faces] == RUSTFACE_BOXES
    for face in fixture_faces:
        assert set(face) == {"bbox", "roll", "pitch", "yaw", "score"}
        assert (face["roll"], face["pitch"], face["yaw"]) == (0.0, 0.0, 0.0)


def test_no_face_scores_below_score_thresh(fixture_faces: list[dict[str, Any]]) -> None:
    # The Haar stand-in returned a 1.26 box (on a shirt) with score_thresh 2.0.
    assert min(f["score"] for f in fixture_faces) >= 2.0


def test_score_thresh_only_filters_the_same_detections(
    run_builtin: RunBuiltin, fvec: Vec, fixture_faces: list[dict[str, Any]]
) -> None:
    strict = _faces(run_builtin, fvec, score_thresh=12.0)
    assert strict == [f for f in fixture_faces if f["score"] >= 12.0]
    assert 0 < len(strict) < len(fixture_faces)


def test_omitted_score_thresh_is_rustfaces_default_3_85(
    run_builtin: RunBuiltin, fvec: Vec, fixture_faces: list[dict[str, Any]]
) -> None:
    assert _faces(run_builtin, fvec, score_thresh=None) == [
        f for f in fixture_faces if f["score"] >= 3.85
    ]


def test_min_face_size_and_window_size_do_not_change_the_search(
    run_builtin: RunBuiltin, fvec: Vec, fixture_faces: list[dict[str, Any]]
) -> None:
    # rustface validates both, then always searches from scale 1 with a 40-pixel window.
    assert _faces(run_builtin, fvec, min_face_size=200, window_size=80) == fixture_faces


def test_max_face_size_below_the_window_finds_nothing(run_builtin: RunBuiltin, fvec: Vec) -> None:
    assert _faces(run_builtin, fvec, max_face_size=39) == []


def test_lone_window_step_is_ignored_as_teaclave_does(
    run_builtin: RunBuiltin, fvec: Vec, fixture_faces: list[dict[str, Any]]
) -> None:
    # Teaclave calls set_slide_window_step only when both steps are given.
    faces = _faces(run_builtin, fvec, slide_window_step_x=0, slide_window_step_y=None)
    assert faces == [f for f in fixture_faces if f["score"] >= 2.0]


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
        {"slide_window_step_x": 0, "slide_window_step_y": 4},
        {"slide_window_step_x": 4, "slide_window_step_y": 0},
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
