"""Typed decoding of a builtin's argument object (spec §5.2).

Teaclave deserialises the JSON argument object into a Rust struct with serde:
JSON types must match the field types, unknown keys are ignored, and any
mismatch ends the task with ``Cannot deserialize arguments``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from confide.invocation import FunctionError

__all__ = ["DESERIALIZE_ERROR", "Field", "Kind", "decode_arguments"]

DESERIALIZE_ERROR = "Cannot deserialize arguments"

_U64_MAX = 2**64 - 1


class Kind(enum.Enum):
    """Rust field types a builtin argument can have."""

    STR = "String"
    BOOL = "bool"
    U8 = "u8"
    U32 = "u32"
    USIZE = "usize"
    F32 = "f32"
    F64 = "f64"
    BYTES = "Vec<u8>"


_UINT_MAX = {Kind.U8: 0xFF, Kind.U32: 0xFFFFFFFF, Kind.USIZE: _U64_MAX}


@dataclass(frozen=True)
class Field:
    """One struct field: its JSON key, Rust type and whether it is ``Option<…>``."""

    name: str
    kind: Kind
    optional: bool = False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _decode_value(kind: Kind, value: Any) -> Any:
    if kind is Kind.STR:
        if isinstance(value, str):
            return value
    elif kind is Kind.BOOL:
        if isinstance(value, bool):
            return value
    elif kind in _UINT_MAX:
        if _is_int(value) and 0 <= value <= _UINT_MAX[kind]:
            return int(value)
    elif kind in (Kind.F32, Kind.F64):
        # serde_json accepts any JSON number for a float field.
        if (_is_int(value) or isinstance(value, float)) and math.isfinite(float(value)):
            if kind is Kind.F32:
                with np.errstate(over="ignore"):
                    return np.float32(float(value))
            return float(value)
    elif kind is Kind.BYTES:
        if isinstance(value, list) and all(_is_int(v) and 0 <= v <= 0xFF for v in value):
            return bytes(value)
    raise FunctionError(DESERIALIZE_ERROR)


def decode_arguments(arguments: Mapping[str, Any], fields: tuple[Field, ...]) -> dict[str, Any]:
    """Decode ``arguments`` into ``{field name: typed value}``.

    Optional fields that are absent or ``null`` decode to ``None``; extra keys
    are ignored.

    Raises:
        FunctionError: ``Cannot deserialize arguments`` on any missing required
            field or JSON type mismatch.
    """
    decoded: dict[str, Any] = {}
    for field in fields:
        if field.name not in arguments:
            if not field.optional:
                raise FunctionError(DESERIALIZE_ERROR)
            decoded[field.name] = None
            continue
        value = arguments[field.name]
        if value is None and field.optional:
            decoded[field.name] = None
            continue
        decoded[field.name] = _decode_value(field.kind, value)
    return decoded
