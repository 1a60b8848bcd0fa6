"""The 13 builtins by their exact registered names (spec §5.5, Q16)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from . import (
    _echo,
    _face_detection,
    _gbdt,
    _logistic_regression,
    _online_decrypt,
    _ordered_set_intersect,
    _ordered_set_join,
    _password_check,
    _pca,
    _private_join_and_compute,
    _rsa_sign,
)
from ._context import FunctionContext

__all__ = ["BUILTINS", "Builtin"]


@dataclass(frozen=True)
class Builtin:
    """A builtin function: its registered name, log module and entry point."""

    name: str
    module: str  # Teaclave's Rust module, used in log lines: teaclave_function::<module>
    run: Callable[[FunctionContext], str]


def _table(*entries: Builtin) -> Mapping[str, Builtin]:
    return MappingProxyType({b.name: b for b in entries})


BUILTINS: Mapping[str, Builtin] = _table(
    Builtin(_echo.NAME, "echo", _echo.run),
    Builtin(_gbdt.TRAIN_NAME, "gbdt_train", _gbdt.train),
    Builtin(_gbdt.PREDICT_NAME, "gbdt_predict", _gbdt.predict),
    Builtin(
        _logistic_regression.TRAIN_NAME, "logistic_regression_train", _logistic_regression.train
    ),
    Builtin(
        _logistic_regression.PREDICT_NAME,
        "logistic_regression_predict",
        _logistic_regression.predict,
    ),
    Builtin(_online_decrypt.NAME, "online_decrypt", _online_decrypt.run),
    Builtin(
        _private_join_and_compute.NAME, "private_join_and_compute", _private_join_and_compute.run
    ),
    Builtin(_ordered_set_intersect.NAME, "ordered_set_intersect", _ordered_set_intersect.run),
    Builtin(_ordered_set_join.NAME, "ordered_set_join", _ordered_set_join.run),
    Builtin(_rsa_sign.NAME, "rsa_sign", _rsa_sign.run),
    Builtin(_face_detection.NAME, "face_detection", _face_detection.run),
    Builtin(_pca.NAME, "principal_components_analysis", _pca.run),
    Builtin(_password_check.NAME, "password_check", _password_check.run),
)
