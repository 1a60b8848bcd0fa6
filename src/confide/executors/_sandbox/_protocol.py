"""Frames from the sandbox to the worker, parsed as untrusted input.

Every frame is ``kind (u8) | length (u32, big endian) | body``. The body of a
frame is at most ``Limits.python_max_frame_bytes``. Kinds:

=========  =====================================================================
READY      empty: limits and seccomp are in force, function code starts now
LOG        JSON ``{"l": level, "m": module, "t": text}``: one captured line
CREATE     JSON ``{"h": handle, "n": name}``: the function created output ``name``
WRITE      ``handle (u32)`` then raw bytes appended to that output
CLOSE      ``handle (u32)``
RESULT     JSON ``{"s": "ok", "v": text}`` or ``{"s": "exec_error" | "memory" |
           "too_long"}``: the function finished
=========  =====================================================================

Anything else (unknown kind, oversized frame, bad JSON, wrong types) raises
:class:`ProtocolViolation`. The function runs in the same process as the
harness, so it can forge frames; validation here is what makes that harmless.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ._errors import ProtocolViolation

__all__ = [
    "K_CLOSE",
    "K_CREATE",
    "K_LOG",
    "K_READY",
    "K_RESULT",
    "K_WRITE",
    "LOG_LEVELS",
    "MAX_HANDLES",
    "RESULT_STATES",
    "WRITE_HANDLE_BIT",
    "Create",
    "Frame",
    "FrameDecoder",
    "LogLine",
    "Result",
    "parse_create",
    "parse_handle",
    "parse_log",
    "parse_result",
    "valid_handle",
]

K_READY, K_LOG, K_CREATE, K_WRITE, K_CLOSE, K_RESULT = 1, 2, 3, 4, 5, 6
_KINDS = frozenset({K_READY, K_LOG, K_CREATE, K_WRITE, K_CLOSE, K_RESULT})
_HEADER = struct.Struct(">BI")
_HANDLE = struct.Struct(">I")
WRITE_HANDLE_BIT = 0x40000000
MAX_HANDLES = 1023
LOG_LEVELS = frozenset({"ERROR", "WARN", "INFO", "DEBUG", "TRACE"})
RESULT_STATES = frozenset({"ok", "exec_error", "memory", "too_long"})


@dataclass(frozen=True)
class Frame:
    kind: int
    body: bytes


@dataclass(frozen=True)
class LogLine:
    level: str
    module: str
    text: str


@dataclass(frozen=True)
class Create:
    handle: int
    name: str


@dataclass(frozen=True)
class Result:
    state: str
    value: str


class FrameDecoder:
    """Incremental decoder: feed bytes, iterate complete frames."""

    def __init__(self, max_body: int) -> None:
        self._max_body = max_body
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[Frame]:
        self._buffer += data
        while len(self._buffer) >= _HEADER.size:
            kind, length = _HEADER.unpack_from(self._buffer)
            if kind not in _KINDS:
                raise ProtocolViolation(f"unknown frame kind {kind}")
            if length > self._max_body:
                raise ProtocolViolation(f"frame of {length} bytes exceeds the cap")
            end = _HEADER.size + length
            if len(self._buffer) < end:
                return
            body = bytes(self._buffer[_HEADER.size : end])
            del self._buffer[:end]
            yield Frame(kind, body)

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame still buffered."""
        return len(self._buffer)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtocolViolation("frame body is not JSON") from e
    if not isinstance(value, dict):
        raise ProtocolViolation("frame body is not a JSON object")
    return value


def _str_field(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise ProtocolViolation(f"field {key!r} is not a string")
    return value


def parse_log(body: bytes) -> LogLine:
    obj = _json_object(body)
    level = _str_field(obj, "l")
    if level not in LOG_LEVELS:
        raise ProtocolViolation("unknown log level")
    module = _str_field(obj, "m")
    text = _str_field(obj, "t")
    if not module.isprintable() or len(module) > 64:
        raise ProtocolViolation("bad log module name")
    return LogLine(level, module, text.replace("\r", "\\r").replace("\n", "\\n"))


def valid_handle(handle: int, *, write: bool) -> bool:
    number = handle & ~WRITE_HANDLE_BIT if write else handle
    has_bit = bool(handle & WRITE_HANDLE_BIT)
    return has_bit == write and 1 <= number <= MAX_HANDLES


def parse_create(body: bytes) -> Create:
    obj = _json_object(body)
    handle = obj.get("h")
    if type(handle) is not int or not valid_handle(handle, write=True):
        raise ProtocolViolation("bad output handle")
    return Create(handle, _str_field(obj, "n"))


def parse_handle(body: bytes) -> tuple[int, bytes]:
    """Split a WRITE/CLOSE body into its handle and the rest."""
    if len(body) < _HANDLE.size:
        raise ProtocolViolation("frame too short for a handle")
    (handle,) = _HANDLE.unpack_from(body)
    return handle, body[_HANDLE.size :]


def parse_result(body: bytes) -> Result:
    obj = _json_object(body)
    state = _str_field(obj, "s")
    if state not in RESULT_STATES:
        raise ProtocolViolation("unknown result state")
    value = _str_field(obj, "v") if state == "ok" else ""
    return Result(state, value)
