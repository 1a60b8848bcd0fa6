"""builtin-face-detection (SeetaFace funnel cascade) against OpenCV's Haar cascade, one run.

Run: ``PYTHONPATH=src python bench/face_detection.py [--runs R] [IMAGE]``.

IMAGE defaults to Teaclave's fixture ``face_detection/input.jpg`` (1666x1136) under
``$CONFIDE_VECTORS`` (default ``/work/shared/vectors``, else ``../shared/vectors``).
With Teaclave's test arguments (thresh 2.0, scale 0.8, steps 4):
* seeta: confide's detector (``confide.functions._seeta_detector``), grey image in;
* haar: OpenCV 4's ``detectMultiScale3`` with ``haarcascade_frontalface_default.xml``
  and the mapping confide used before (scaleFactor 1.25, minNeighbors 3, minSize 20),
  the same grey image in — the baseline this detector replaced.
Runs alternate; figures are medians of R runs (decode excluded, model load excluded).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

# bench/ is not a package: this file's directory is on sys.path when run as a script.
from _speed import speed_line

from confide.functions._face_detection import _grey, _model
from confide.functions._seeta_detector import DetectorOptions, detect_faces

_FIXTURE_REL = "teaclave/functions/face_detection/input.jpg"


def _fixture() -> Path:
    env = os.environ.get("CONFIDE_VECTORS")
    roots = [Path(env)] if env else []
    roots += [Path("/work/shared/vectors"), Path(__file__).resolve().parents[2] / "shared/vectors"]
    for root in roots:
        if (root / _FIXTURE_REL).is_file():
            return root / _FIXTURE_REL
    raise SystemExit("fixture image not found: pass IMAGE or set CONFIDE_VECTORS")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("image", nargs="?", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    image: Path = args.image or _fixture()
    grey = _grey(image.read_bytes())
    model = _model()
    options = DetectorOptions(score_thresh=2.0)
    cascade = cv2.CascadeClassifier(
        cv2.data.haarcascades + "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
    )
    seeta: list[float] = []
    haar: list[float] = []
    faces_seeta = faces_haar = 0
    for _ in range(args.runs):
        t0 = time.perf_counter()
        faces_seeta = len(detect_faces(grey, model, options))
        seeta.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        boxes, _, _ = cascade.detectMultiScale3(
            grey,
            scaleFactor=1.25,
            minNeighbors=3,
            minSize=(20, 20),
            maxSize=(min(grey.shape), min(grey.shape)),
            outputRejectLevels=True,
        )
        haar.append(time.perf_counter() - t0)
        faces_haar = len(np.asarray(boxes).reshape(-1, 4))
    s, h = statistics.median(seeta), statistics.median(haar)
    print(f"image {image.name} {grey.shape[1]}x{grey.shape[0]}, {args.runs} runs, one core")
    print(f"{'detector':<8} {'faces':>5} {'median s':>9} {'ratio':>6}")
    print(f"{'seeta':<8} {faces_seeta:>5} {s:>9.3f} {s / h:>6.2f}")
    print(f"{'haar':<8} {faces_haar:>5} {h:>9.3f} {1.0:>6.2f}")
    print(speed_line())


if __name__ == "__main__":
    cv2.setNumThreads(1)
    main()
