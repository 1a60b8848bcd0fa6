"""MesaPy-style functions (Python 2.7 for MesaPy, ``*.py2``) and their test data.

The payloads are data, not test code: they are Python 2 and never imported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["payload", "reference_predictions", "table", "training_set"]

HERE = Path(__file__).resolve().parent


def payload(name: str) -> bytes:
    """The bytes of ``<name>.py2``."""
    return (HERE / f"{name}.py2").read_bytes()


def table() -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(17)
    values = np.round(rng.uniform(0, 50, size=(12, 3)), 3)
    text = "\n".join(",".join(repr(float(v)) for v in row) for row in values) + "\n\n"
    return text.encode(), values


def training_set() -> tuple[bytes, bytes, list[int]]:
    rng = np.random.default_rng(7)
    x = rng.uniform(-3, 3, size=(80, 2))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0.2).astype(int)
    train = "\n".join(f"{float(a)!r},{float(b)!r},{c}"
                      for (a, b), c in zip(x, y, strict=True)).encode()
    test_x = rng.uniform(-3, 3, size=(15, 2))
    data = "\n".join(f"{float(a)!r},{float(b)!r}" for a, b in test_x).encode()
    return train, data, reference_predictions(x, y, test_x)


def reference_predictions(x: np.ndarray, y: np.ndarray, test_x: np.ndarray,
                           iterations: int = 300, rate: float = 0.5) -> list[int]:
    """The same model trained plainly in Python 3 (numpy)."""
    low, high = x.min(0), x.max(0)
    xs = (x - low) / (high - low)
    yy = y.reshape(-1, 1).astype(float)
    m, n = xs.shape
    w, b = np.zeros((n, 1)), 0.0
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(xs.dot(w) + b)))
        w = w - rate * xs.T.dot(p - yy) / m
        b = b - rate * (p - yy).sum() / m
    p = 1 / (1 + np.exp(-(((test_x - low) / (high - low)).dot(w) + b)))
    return [1 if v > 0.5 else 0 for v in p[:, 0]]


