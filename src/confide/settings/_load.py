"""Loading the operator's configuration: a TOML file, then environment variables.

Precedence: built-in defaults < the TOML file < ``CONFIDE_<SECTION>__<KEY>``
environment variables (``CONFIDE_LIMITS__MAX_OUTPUT_FILE_BYTES=64MiB``).
Everything is validated before anything starts: an unknown section or key, a
value of the wrong type or out of range are all reported at once, each naming
where it came from (file or variable) and the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._model import Settings
from ._values import ValueRefused, coerce

__all__ = ["ENV_PREFIX", "SettingsError", "env_name", "load_settings", "section_from",
           "settings_from"]

#: Environment variables ``CONFIDE_<SECTION>__<KEY>`` set one key each.
ENV_PREFIX = "CONFIDE_"
_ENV_SEPARATOR = "__"
_MAX_FILE_BYTES = 1 << 20


class SettingsError(Exception):
    """The configuration is refused; ``problems`` has one line per bad key."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration:\n{lines}")


def env_name(section: str, key: str) -> str:
    """The environment variable that sets ``section.key``."""
    return f"{ENV_PREFIX}{section.upper()}{_ENV_SEPARATOR}{key.upper()}"


def _sections() -> dict[str, type[Any]]:
    hints = typing.get_type_hints(Settings)
    return {f.name: hints[f.name] for f in dataclasses.fields(Settings)}


def _did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Raw:
    """Raw values per section, each with where it came from."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, tuple[Any, str, bool]]] = {}

    def put(self, section: str, key: str, value: Any, where: str, from_env: bool) -> None:
        self.values.setdefault(section, {})[key] = (value, where, from_env)


def section_from(cls: type[Any], raw: Mapping[str, Any], *, source: str) -> Any:
    """Build one section (e.g. ``Limits``) from plain values, validating each.

    Raises:
        SettingsError: an unknown key or a bad value.
    """
    name = next((n for n, c in _sections().items() if c is cls), cls.__name__.lower())
    collected = _Raw()
    for key, value in raw.items():
        collected.put(name, key, value, f"{source}: {name}.{key}", False)
    problems: list[str] = []
    built = _build(cls, name, collected.values.get(name, {}), problems)
    if problems:
        raise SettingsError(problems)
    return built


def _build(cls: type[Any], section: str, raw: dict[str, tuple[Any, str, bool]],
           problems: list[str]) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values: dict[str, Any] = {}
    for key, (value, where, from_env) in raw.items():
        if key not in hints or key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean {section}.{close[0]}?)" if close else ""
            problems.append(f"{where}: unknown key{hint}")
            continue
        try:
            values[key] = coerce(value, hints[key], key=key, from_env=from_env)
            check = getattr(cls, "check_value", None)  # a section's own rules, if any
            if check is not None:
                check(key, values[key])
        except ValueRefused as e:
            problems.append(f"{where}: {e}")
    return cls(**values)


def settings_from(document: Mapping[str, Any], environ: Mapping[str, str], *,
                  source: str = "configuration") -> Settings:
    """The settings for a parsed TOML ``document`` and the environment ``environ``.

    Raises:
        SettingsError: every problem found, each naming its source and key.
    """
    sections = _sections()
    known = sorted(sections)
    raw = _Raw()
    problems: list[str] = []
    for name, table in document.items():
        if name not in sections:
            problems.append(f"{source}: unknown section [{name}]{_did_you_mean(name, known)}")
        elif not isinstance(table, dict):
            problems.append(f"{source}: {name} must be a table ([{name}]), got {table!r}")
        else:
            for key, value in table.items():
                raw.put(name, key, value, f"{source}: {name}.{key}", False)
    for var in sorted(environ):
        if not var.startswith(ENV_PREFIX) or _ENV_SEPARATOR not in var[len(ENV_PREFIX):]:
            continue
        section, _, key = var[len(ENV_PREFIX):].partition(_ENV_SEPARATOR)
        section, key = section.lower(), key.lower()
        where = f"environment variable {var}"
        if section not in sections:
            problems.append(f"{where}: unknown section {section!r}"
                            f"{_did_you_mean(section, known)}")
            continue
        raw.put(section, key, environ[var], f"{where} ({section}.{key})", True)
    built = {name: _build(cls, name, raw.values.get(name, {}), problems)
             for name, cls in sections.items()}
    if problems:
        raise SettingsError(problems)
    return Settings(**built)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_FILE_BYTES + 1)
    except OSError as e:
        raise SettingsError([f"cannot read configuration file {path}: {e.strerror}"]) from e
    if len(data) > _MAX_FILE_BYTES:
        raise SettingsError([f"{path}: larger than {_MAX_FILE_BYTES} bytes"])
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise SettingsError([f"{path}: not UTF-8 text ({e.reason} at byte {e.start})"]) from e
    except tomllib.TOMLDecodeError as e:
        raise SettingsError([f"{path}: not valid TOML: {e}"]) from e


def load_settings(path: Path | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults, then the TOML file at ``path`` (if any), then the environment.

    Raises:
        SettingsError: the file cannot be read or parsed, or a key or value is refused.
    """
    document = _read_toml(path) if path is not None else {}
    env = os.environ if environ is None else environ
    return settings_from(document, env, source=str(path) if path is not None else "defaults")
