"""Reading what the user typed: ``name=value`` pairs, JSON, hex, keys -- as clean usage errors.

Every parser raises :class:`UsageError` naming the option and what is wrong;
``_common.run`` prints it and exits 1 (never a traceback). Keys never come from
the command line (``ps`` and shell history would show them): from a file
(``--key-file``), standard input (``--key-stdin``) or a hidden prompt.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

__all__ = ["UsageError", "parse_hex", "parse_json_object", "parse_pairs", "read_key",
           "read_secret_line"]


class UsageError(Exception):
    """The command line is wrong; the message says where and how."""


def parse_pairs(items: list[str] | None, option: str, what: str = "name=value"
                ) -> dict[str, str]:
    """``["a=1", "b=2"]`` → ``{"a": "1", "b": "2"}``; each item must have a name and ``=``."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"{option} {item!r}: expected {what}")
        if name in out:
            raise UsageError(f"{option}: {name!r} given twice")
        out[name] = value
    return out


def parse_json_object(text: str, option: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as e:
        raise UsageError(f"{option} is not valid JSON: {e}") from e
    if not isinstance(value, dict):
        raise UsageError(f"{option} must be a JSON object, like '{{\"n\": 2}}'")
    return value


def parse_hex(text: str, option: str, *, length: int | None = None) -> bytes:
    try:
        value = bytes.fromhex(text.strip())
    except ValueError as e:
        raise UsageError(f"{option} is not valid hex") from e
    if length is not None and len(value) != length:
        raise UsageError(f"{option} must be {length} bytes ({2 * length} hex digits), "
                         f"got {len(value)}")
    return value


def _key_bytes(raw: bytes, source: str) -> bytes:
    """A key file holds hex (whitespace ignored) or the raw key bytes."""
    text = raw.strip()
    try:
        if text and all(c in b"0123456789abcdefABCDEF" for c in text):
            return bytes.fromhex(text.decode())
    except ValueError:
        pass
    if not raw:
        raise UsageError(f"{source} is empty")
    return raw


def read_key(key_file: Path | None, key_stdin: bool, *, what: str = "key",
             required: bool = True) -> bytes | None:
    """The key from ``--key-file``, ``--key-stdin`` or a hidden prompt (a terminal only)."""
    if key_file is not None and key_stdin:
        raise UsageError("give --key-file or --key-stdin, not both")
    if key_file is not None:
        try:
            return _key_bytes(key_file.read_bytes(), f"--key-file {key_file}")
        except OSError as e:
            raise UsageError(f"--key-file {key_file}: {e.strerror or e}") from e
    if key_stdin:
        return _key_bytes(sys.stdin.buffer.read(), "--key-stdin (standard input)")
    if not required:
        return None
    if not sys.stdin.isatty():
        raise UsageError(f"the {what} is needed: give --key-file FILE or --key-stdin "
                         "(keys are never read from the command line)")
    typed = typer.prompt(f"{what} (hex)", hide_input=True)
    return parse_hex(str(typed), what)


def read_secret_line(option: str) -> str:
    """One line from standard input (``--password-stdin``), without its newline."""
    line = sys.stdin.readline()
    if not line:
        raise UsageError(f"{option}: nothing on standard input")
    return line.rstrip("\r\n")
