"""Label values with bounded cardinality.

A Prometheus series exists per distinct label combination, forever; a label
fed from anything a caller controls (an id, a free-form reason) would grow the
process's memory and every scrape without bound. Each label here is either
from a fixed set written in code (RPC method names of the registered
handlers, ``read``/``write``, …) or passes through a :class:`BoundedLabel`,
which keeps the first ``cap`` distinct well-formed values and maps everything
else to ``other``.
"""

from __future__ import annotations

import re
import threading

__all__ = ["OTHER", "BoundedLabel", "reason_of"]

OTHER = "other"
_WELL_FORMED = re.compile(r"[a-z0-9][a-z0-9_.-]{0,47}")
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def reason_of(error: BaseException) -> str:
    """An error's ``reason`` (``nonce-expired``), else its class name in snake case
    without ``Error`` (``MeasurementNotAcceptedError`` → ``measurement_not_accepted``)."""
    reason = getattr(error, "reason", None)
    if isinstance(reason, str) and reason:
        return reason
    name = type(error).__name__.removesuffix("Error") or type(error).__name__
    return _CAMEL.sub("_", name).lower()


class BoundedLabel:
    """At most ``cap`` distinct values of one label; anything beyond is ``other``.

    Values are lower-cased with spaces and dashes kept as ``_``/``-``; a value
    that is not a short identifier (``[a-z0-9][a-z0-9_.-]{0,47}``) is ``other``
    too, so no label carries free text (or a secret pasted into an error).
    """

    def __init__(self, cap: int = 32) -> None:
        self._cap = cap
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        value = value.strip().lower().replace(" ", "_")
        if value in self._seen:
            return value
        if not _WELL_FORMED.fullmatch(value):
            return OTHER
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) >= self._cap:
                return OTHER
            self._seen.add(value)
        return value
