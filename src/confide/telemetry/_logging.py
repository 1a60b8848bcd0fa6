"""Structured logs: one line per event, with the request and task it belongs to.

Two formats, chosen by ``confide serve --log-format``:

* ``human`` (default): ``2026-12-05T08:06:54.067Z INFO server confide.server: message
  request_id=… task_id=…``;
* ``json``: one JSON object per line with the keys ``ts``, ``level``, ``process``,
  ``logger``, ``msg`` and, when known, ``request_id``, ``task_id``,
  ``executor_id``, ``exc``.

Either way an event is exactly one line: newlines inside a message or a
traceback are escaped. The ids come from context variables that the gRPC
interceptor (``request_id``, and ``task_id`` when the request names a task) and
the worker (``task_id`` while it runs one) set; a log call may also pass
``extra={"task_id": …}``. What is logged is the caller's responsibility:
confide logs ids, names, sizes and reasons, never keys, passwords, tokens,
file contents or function arguments (a test scans the logs of a full run).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal, TextIO

__all__ = [
    "LOG_FORMATS",
    "REQUEST_ID",
    "TASK_ID",
    "HumanFormatter",
    "JsonFormatter",
    "LogFormat",
    "configure_logging",
    "new_request_id",
    "task_context",
    "valid_request_id",
]

LogFormat = Literal["human", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("human", "json")

#: The RPC being handled (set by the interceptor of every gRPC server).
REQUEST_ID: ContextVar[str | None] = ContextVar("confide_request_id", default=None)
#: The task being handled or run, when known.
TASK_ID: ContextVar[str | None] = ContextVar("confide_task_id", default=None)

_CONTEXT_FIELDS = ("request_id", "task_id", "executor_id")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def new_request_id() -> str:
    """A fresh request id (16 hex digits)."""
    return os.urandom(8).hex()


def valid_request_id(value: str | None) -> str | None:
    """A caller-supplied ``x-request-id`` if it is a short token, else None."""
    if value is not None and _REQUEST_ID.fullmatch(value):
        return value
    return None


@contextmanager
def task_context(task_id: str) -> Iterator[None]:
    """Log lines within carry ``task_id``."""
    token = TASK_ID.set(task_id)
    try:
        yield
    finally:
        TASK_ID.reset(token)


class _ContextFilter(logging.Filter):
    """Copies the context ids and the process's static fields onto each record."""

    def __init__(self, static: Mapping[str, str]) -> None:
        super().__init__()
        self._static = dict(static)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        if getattr(record, "task_id", None) is None:
            record.task_id = TASK_ID.get()
        for key, value in self._static.items():
            if getattr(record, key, None) is None:
                setattr(record, key, value)
        return True


def _timestamp(record: logging.LogRecord) -> str:
    when = dt.datetime.fromtimestamp(record.created, dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _one_line(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")


class _Base(logging.Formatter):
    def __init__(self, process: str) -> None:
        super().__init__()
        self._process = process

    def _exception(self, record: logging.LogRecord) -> str | None:
        if record.exc_info:
            return self.formatException(record.exc_info)
        if record.exc_text:
            return record.exc_text
        return None


class HumanFormatter(_Base):
    """``TS LEVEL PROCESS LOGGER: message key=value …`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), record.levelname, self._process,
                 f"{record.name}: {_one_line(record.getMessage())}"]
        for key in _CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value:
                parts.append(f"{key}={_one_line(str(value))}")
        exc = self._exception(record)
        if exc:
            parts.append("exc=" + json.dumps(exc))
        return " ".join(parts)


class JsonFormatter(_Base):
    """One JSON object per line (module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {"ts": _timestamp(record), "level": record.levelname,
                                 "process": self._process, "logger": record.name,
                                 "msg": record.getMessage()}
        for key in _CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value:
                event[key] = str(value)
        exc = self._exception(record)
        if exc:
            event["exc"] = exc
        return json.dumps(event, ensure_ascii=True)


def configure_logging(fmt: LogFormat = "human", level: str | int = "INFO", *,
                      process: str = "server", static: Mapping[str, str] | None = None,
                      stream: TextIO | None = None) -> None:
    """Route every log record (and Python warnings) of this process through one handler.

    Args:
        fmt: ``human`` or ``json``.
        level: the root level (name or number).
        process: what the ``process`` field says (``server``, ``worker``).
        static: fields every line of this process carries (``executor_id``).
        stream: where lines go (default: standard error).

    Raises:
        ValueError: an unknown format or level.
    """
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    if isinstance(level, str):
        number = logging.getLevelName(level.upper())
        if not isinstance(number, int):
            raise ValueError(f"unknown log level {level!r}")
        level = number
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(process) if fmt == "json" else HumanFormatter(process))
    handler.addFilter(_ContextFilter(static or {}))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
