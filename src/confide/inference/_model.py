"""The model owner's side: train on scikit-learn's bundled digits, export, and the data formats.

Everything here runs on the party's own machine, never on the platform. The
data set ships inside scikit-learn (1,797 8x8 images, pixel values 0..16), so
nothing is downloaded. Two exports of two real models:

* an ``MLPClassifier`` as ONNX (skl2onnx), for the ONNX Runtime engine;
* a multinomial ``LogisticRegression`` in confide's small fixed-point linear
  format (:data:`LINEAR_MAGIC`), for the wasm engine, which has no ONNX parser.

Images travel as ``n x 64`` unsigned bytes (:data:`IMAGE_FEATURES` per image),
labels as one unsigned byte per image.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ._errors import InferenceError

__all__ = [
    "IMAGE_FEATURES",
    "LINEAR_MAGIC",
    "LINEAR_SCALE_BITS",
    "DigitsSplit",
    "LinearModel",
    "TrainedModels",
    "decode_images",
    "decode_labels",
    "encode_images",
    "load_digits_split",
    "train_models",
]

#: Pixels per image (8 x 8); each a byte 0..16 in the bundled data set.
IMAGE_FEATURES = 64
#: First four bytes of a linear model file.
LINEAR_MAGIC = b"CLM1"
#: Weights and biases are stored as round(value * 2**LINEAR_SCALE_BITS), int32.
LINEAR_SCALE_BITS = 16
#: The wasm engine's own bounds (it refuses a model outside them).
MAX_CLASSES = 16
MAX_FEATURES = 4096
_I32 = np.iinfo(np.int32)
_PIXEL_MAX = 16.0


@dataclass(frozen=True)
class DigitsSplit:
    """The bundled digits, split once: the model owner's training part and the business's images."""

    train_images: npt.NDArray[np.uint8]
    train_labels: npt.NDArray[np.uint8]
    images: npt.NDArray[np.uint8]
    labels: npt.NDArray[np.uint8]


@dataclass(frozen=True)
class LinearModel:
    """A fixed-point linear classifier: ``argmax(W @ x + b)``, first maximum on ties."""

    weights: npt.NDArray[np.int32]  # classes x features
    bias: npt.NDArray[np.int32]  # classes

    def to_bytes(self) -> bytes:
        classes, features = self.weights.shape
        return (LINEAR_MAGIC + struct.pack("<II", classes, features)
                + self.weights.astype("<i4").tobytes() + self.bias.astype("<i4").tobytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> LinearModel:
        """Parse a model file (untrusted bytes: every size is checked).

        Raises:
            InferenceError: not a linear model file, or sizes out of bounds.
        """
        if len(data) < 12 or data[:4] != LINEAR_MAGIC:
            raise InferenceError("not a linear model file (bad magic)")
        classes, features = struct.unpack_from("<II", data, 4)
        if not (1 <= classes <= MAX_CLASSES and 1 <= features <= MAX_FEATURES):
            raise InferenceError(f"linear model of {classes} x {features} is out of bounds")
        expected = 12 + 4 * (classes * features + classes)
        if len(data) != expected:
            raise InferenceError(f"linear model file is {len(data)} bytes, expected {expected}")
        values = np.frombuffer(data, dtype="<i4", offset=12)
        weights = values[: classes * features].reshape(classes, features).astype(np.int32)
        return cls(weights, values[classes * features:].astype(np.int32))

    def predict(self, images: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """The plain local run: exact integer arithmetic, as the wasm engine does it."""
        scores = images.astype(np.int64) @ self.weights.T.astype(np.int64) + self.bias
        labels: npt.NDArray[np.uint8] = np.argmax(scores, axis=1).astype(np.uint8)
        return labels


@dataclass(frozen=True)
class TrainedModels:
    """What the model owner made: two exports and the models' own (scikit-learn) predictions."""

    onnx: bytes
    linear: LinearModel
    mlp: Any  # sklearn.neural_network.MLPClassifier
    logistic: Any  # sklearn.linear_model.LogisticRegression


def _require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise InferenceError(f"{module} is needed: pip install 'confide[inference]'") from e


def load_digits_split(holdout: int = 400, seed: int = 0) -> DigitsSplit:
    """The bundled digits, shuffled with ``seed``; the last ``holdout`` are the business's."""
    datasets = _require("sklearn.datasets")
    x, y = datasets.load_digits(return_X_y=True)
    if not 1 <= holdout < len(x):
        raise InferenceError(f"holdout must be between 1 and {len(x) - 1}")
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order].astype(np.uint8), y[order].astype(np.uint8)
    cut = len(x) - holdout
    return DigitsSplit(x[:cut], y[:cut], x[cut:], y[cut:])


def train_models(split: DigitsSplit, seed: int = 0) -> TrainedModels:
    """Train both models on the training part and export them.

    They are trained on pixels scaled to 0..1 (faster to converge); the scale
    is then folded into the first layer, so both exports take raw pixels.
    """
    import warnings

    neural = _require("sklearn.neural_network")
    linear = _require("sklearn.linear_model")
    exceptions = _require("sklearn.exceptions")
    skl2onnx = _require("skl2onnx")
    x = split.train_images.astype(np.float32) / _PIXEL_MAX
    mlp = neural.MLPClassifier(hidden_layer_sizes=(32,), max_iter=200, random_state=seed)
    with warnings.catch_warnings():  # 200 iterations are enough for this demo's accuracy
        warnings.simplefilter("ignore", exceptions.ConvergenceWarning)
        mlp.fit(x, split.train_labels)
    mlp.coefs_[0] = mlp.coefs_[0] / _PIXEL_MAX
    onnx = skl2onnx.to_onnx(mlp, x[:1], options={id(mlp): {"zipmap": False}},
                            target_opset=17).SerializeToString()
    logistic = linear.LogisticRegression(max_iter=300)
    logistic.fit(x, split.train_labels)
    logistic.coef_ = logistic.coef_ / _PIXEL_MAX
    return TrainedModels(onnx, quantize(logistic.coef_, logistic.intercept_), mlp, logistic)


def quantize(coef: npt.NDArray[np.float64], intercept: npt.NDArray[np.float64]) -> LinearModel:
    """Fixed-point weights (scale 2**LINEAR_SCALE_BITS), clipped to int32."""
    scale = float(1 << LINEAR_SCALE_BITS)
    weights = np.clip(np.rint(coef * scale), _I32.min, _I32.max).astype(np.int32)
    bias = np.clip(np.rint(intercept * scale), _I32.min, _I32.max).astype(np.int32)
    return LinearModel(weights, bias)


def encode_images(images: npt.NDArray[np.uint8]) -> bytes:
    """The business's image file: ``n x 64`` bytes."""
    if images.ndim != 2 or images.shape[1] != IMAGE_FEATURES:
        raise InferenceError(f"images must be n x {IMAGE_FEATURES} pixels")
    return np.ascontiguousarray(images, dtype=np.uint8).tobytes()


def decode_images(data: bytes) -> npt.NDArray[np.uint8]:
    if len(data) % IMAGE_FEATURES:
        raise InferenceError(f"an image file is a multiple of {IMAGE_FEATURES} bytes")
    return np.frombuffer(data, dtype=np.uint8).reshape(-1, IMAGE_FEATURES)


def decode_labels(data: bytes, count: int) -> npt.NDArray[np.uint8]:
    """Labels as the engines write them; exactly ``count`` of them."""
    if len(data) != count:
        raise InferenceError(f"expected {count} labels, got {len(data)}")
    return np.frombuffer(data, dtype=np.uint8)
