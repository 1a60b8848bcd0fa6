"""Showing the effective configuration (``confide config show``), secrets redacted.

The TOML form is a valid configuration file: loading it gives the same
settings (secrets aside), so an operator can start from it.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from .._units import binary_size
from ._model import Settings, is_secret

__all__ = ["REDACTED", "render_json", "render_toml", "settings_dict"]

#: What a set secret is shown as.
REDACTED = "<redacted>"


def settings_dict(settings: Any, *, redact: bool = True) -> dict[str, dict[str, Any]]:
    """``{section: {key: value}}``; unset (``None``) values are left out and set
    secrets are :data:`REDACTED` (unless ``redact`` is false)."""
    out: dict[str, dict[str, Any]] = {}
    for section in dataclasses.fields(settings):
        values = getattr(settings, section.name)
        table: dict[str, Any] = {}
        for f in dataclasses.fields(values):
            value = getattr(values, f.name)
            if value is None:
                continue
            if redact and is_secret(f) and value not in ("", ()):
                value = REDACTED
            table[f.name] = list(value) if isinstance(value, tuple) else value
        out[section.name] = table
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a TOML basic string once DEL is escaped too.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot show {type(value).__name__} as TOML")


def render_toml(settings: Settings) -> str:
    """The configuration as a TOML file, sizes annotated (``# 256 MiB``)."""
    lines = ["# confide configuration: defaults < configuration file < CONFIDE_* environment"]
    for section, table in settings_dict(settings).items():
        lines += ["", f"[{section}]"]
        for key, value in table.items():
            line = f"{key} = {_toml_value(value)}"
            if key.endswith("_bytes") and isinstance(value, int) and binary_size(value):
                line += f"  # {binary_size(value)}"
            lines.append(line)
    return "\n".join(lines) + "\n"


def render_json(settings: Settings) -> str:
    """The configuration as one JSON object."""
    return json.dumps(settings_dict(settings), indent=2, sort_keys=False) + "\n"
