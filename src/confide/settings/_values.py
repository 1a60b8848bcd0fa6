"""Turning one raw value (from TOML or an environment variable) into a typed setting.

Rules (docs/operations.md, "Configuration"):

* integers are whole numbers >= 0 (TOML integers; ``true`` is not a number);
  keys ending in ``_bytes`` also take a size string: ``"256MiB"``, ``"64 KiB"``,
  ``"2GiB"``, ``"512B"`` (binary units only, so ``MB`` is refused rather than
  guessed);
* floats (seconds) are finite numbers >= 0; an integer is accepted;
* booleans are TOML booleans, or ``true``/``false``/``1``/``0`` in the environment;
* strings are strings; a tuple is a TOML array (comma-separated in the environment).

Every refusal is a :class:`ValueRefused` whose text says what was expected and
what was given; the loader prefixes it with the source and the key.
"""

from __future__ import annotations

import math
import re
import types
import typing
from typing import Any

__all__ = ["MAX_INT", "ValueRefused", "coerce"]

#: The largest integer accepted (caps reach C: rlimits, tmpfs sizes).
MAX_INT = 2**63 - 1
_UNITS = {"b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
_SIZE = re.compile(r"^\s*([0-9][0-9_]*)\s*([A-Za-z]*)\s*$")
_ENV_TRUE = {"true", "1", "yes", "on"}
_ENV_FALSE = {"false", "0", "no", "off"}


class ValueRefused(ValueError):
    """A value of the wrong type or out of range (the text names both)."""


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"  # as TOML writes it
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _size(text: str) -> int:
    match = _SIZE.match(text)
    if match is None:
        raise ValueRefused(f'expected a size such as 256MiB, got {_shown(text)}')
    number, unit = int(match.group(1)), match.group(2).lower()
    if unit not in _UNITS and unit != "":
        raise ValueRefused(f"unknown size unit {match.group(2)!r} in {_shown(text)} "
                           "(use B, KiB, MiB, GiB or TiB)")
    return number * _UNITS.get(unit, 1)


def _integer(value: Any, *, size: bool, from_env: bool) -> int:
    kind = 'a size (a whole number of bytes or a string such as "256MiB")' if size \
        else "a whole number"
    if isinstance(value, bool):
        raise ValueRefused(f"expected {kind}, got {_shown(value)}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and (size or from_env):
        if size:
            number = _size(value)
        else:
            try:
                number = int(value.strip(), 10)
            except ValueError:
                raise ValueRefused(f"expected a whole number, got {_shown(value)}") from None
    else:
        raise ValueRefused(f"expected {kind}, got {_shown(value)}")
    if number < 0:
        raise ValueRefused(f"must not be negative, got {number}")
    if number > MAX_INT:
        raise ValueRefused(f"must be at most {MAX_INT}, got {number}")
    return number


def _float(value: Any, *, from_env: bool) -> float:
    if isinstance(value, bool):
        raise ValueRefused(f"expected a number, got {_shown(value)}")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and from_env:
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueRefused(f"expected a number, got {_shown(value)}") from None
    else:
        raise ValueRefused(f"expected a number, got {_shown(value)}")
    if not math.isfinite(number):
        raise ValueRefused(f"must be a finite number, got {_shown(value)}")
    if number < 0:
        raise ValueRefused(f"must not be negative, got {_shown(value)}")
    return number


def _bool(value: Any, *, from_env: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and from_env:
        lowered = value.strip().lower()
        if lowered in _ENV_TRUE | _ENV_FALSE:
            return lowered in _ENV_TRUE
    raise ValueRefused(f"expected true or false, got {_shown(value)}")


def coerce(value: Any, hint: Any, *, key: str, from_env: bool = False) -> Any:
    """``value`` as the type ``hint`` of section field ``key``.

    Raises:
        ValueRefused: wrong type or out of range.
        TypeError: ``hint`` is a type settings cannot hold (a programming error).
    """
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(options) != 1:
            raise TypeError(f"unsupported settings type for {key}: {hint}")
        return coerce(value, options[0], key=key, from_env=from_env)
    if origin is tuple:
        item, *rest = typing.get_args(hint)
        if rest != [Ellipsis]:
            raise TypeError(f"unsupported settings type for {key}: {hint}")
        if from_env and isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            raise ValueRefused(f"expected a list, got {_shown(value)}")
        return tuple(coerce(v, item, key=key, from_env=from_env) for v in value)
    if hint is bool:
        return _bool(value, from_env=from_env)
    if hint is int:
        return _integer(value, size=key.endswith("_bytes"), from_env=from_env)
    if hint is float:
        return _float(value, from_env=from_env)
    if hint is str:
        if not isinstance(value, str):
            raise ValueRefused(f"expected a string, got {_shown(value)}")
        return value
    raise TypeError(f"unsupported settings type for {key}: {hint}")
