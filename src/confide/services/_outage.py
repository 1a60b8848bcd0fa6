"""What a client hears when the database fails, and what the log keeps of it.

A database that cannot be reached, stays locked past its timeout or has no
space left is an outage, not a bug: the caller gets UNAVAILABLE or
RESOURCE_EXHAUSTED with a message saying so (a retry may succeed later; the
SDK retries reads and keyed creates by itself), and the log gets one line per
kind of failure every ``_WINDOW_S`` seconds with the number of calls it cost
meanwhile, instead of a traceback per call. Anything else from storage stays
INTERNAL and is logged with its traceback, at the same rate.
"""

from __future__ import annotations

import logging
import threading
import time

from ..errors import Code, ServiceError
from ..storage import StorageError, StorageFull, StorageUnavailable

__all__ = ["outage_status", "storage_failure"]

_log = logging.getLogger("confide.storage")
_WINDOW_S = 10.0


class _RateLimited:
    """At most one log line per key per window; the next one counts what was held back."""

    def __init__(self, window_s: float) -> None:
        self._window = window_s
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def should_log(self, key: str) -> int | None:
        """None to stay quiet; else how many lines were held back since the last one."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._window:
                self._held[key] = self._held.get(key, 0) + 1
                return None
            self._last[key] = now
            return self._held.pop(key, 0)


_limiter = _RateLimited(_WINDOW_S)


def storage_failure(e: StorageError, where: str) -> ServiceError:
    """The status for ``e`` (raised while serving ``where``), logged at a bounded rate."""
    if isinstance(e, StorageUnavailable):
        error = ServiceError(Code.UNAVAILABLE, "the database is unavailable; retry later")
        error.with_detail("STORAGE_UNAVAILABLE", hint="a retry may succeed once the "
                          "database is back (the SDK and CLI retry reads and creates)")
    elif isinstance(e, StorageFull):
        error = ServiceError(Code.RESOURCE_EXHAUSTED, "the database has no space left")
        error.with_detail("STORAGE_FULL", hint="the operator must free or add space")
    else:
        error = ServiceError.internal()
    kind = type(e).__name__
    held = _limiter.should_log(kind)
    if held is not None:
        more = f" ({held} more since the last report)" if held else ""
        if isinstance(e, StorageUnavailable | StorageFull):
            _log.error("%s in %s: %s%s", kind, where, e, more)
        else:
            _log.error("storage failure in %s: %s%s", where, e, more, exc_info=e)
    return error


def outage_status(e: BaseException, where: str) -> ServiceError | None:
    """:func:`storage_failure` for a storage outage that reached the RPC layer
    unmapped (internal RPCs such as a worker's heartbeat); None for anything else."""
    if isinstance(e, StorageUnavailable | StorageFull):
        return storage_failure(e, where)
    return None
