"""The one error of the inference package."""

from __future__ import annotations

__all__ = ["InferenceError"]


class InferenceError(Exception):
    """A model, image or label file is malformed, or a party's step failed (message says which)."""
