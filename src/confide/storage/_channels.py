"""Wake-ups between processes and hosts: ``notify(channel)`` / ``listen(channel, callback)``.

On PostgreSQL these are ``NOTIFY`` and ``LISTEN``: a frontend in another process
or on another host that stages a task calls ``Database.notify("work")`` and the
scheduler's ``listen("work", ...)`` callback wakes its idle pulls. On SQLite (one
process) they are plain in-process calls.

A notification is a hint, never a fact: it carries no authority (anyone who can
reach the database can send one, and the database is untrusted), so a listener
only re-reads sealed rows when woken. A lost one (a listener reconnecting, a
database restart) costs latency, never correctness: every waiter also re-checks
on its own at least once a second.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["CHANNEL", "MAX_PAYLOAD_BYTES", "Listener", "check_channel", "check_payload"]

_log = logging.getLogger(__name__)
#: A channel name: a lower-case identifier, so it is never quoted or injected.
CHANNEL = re.compile(r"[a-z_][a-z0-9_]{0,62}")
MAX_PAYLOAD_BYTES = 7999  # PostgreSQL's limit is 8000 bytes
_PREFIX = "confide_"  # what LISTEN/NOTIFY see: confide's channels never meet others'
_RECONNECT_MAX_S = 5.0


def check_channel(channel: str) -> str:
    """The database's name of ``channel``; ``ValueError`` for an invalid one."""
    if not isinstance(channel, str) or not CHANNEL.fullmatch(channel):
        raise ValueError(f"invalid notification channel {channel!r}")
    return _PREFIX + channel


def check_payload(payload: str) -> str:
    if not isinstance(payload, str) or len(payload.encode()) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"notification payload must be text of at most {MAX_PAYLOAD_BYTES} "
                         "bytes")
    return payload


class Listener:
    """A callback subscribed to a channel; ``close()`` unsubscribes (and, on
    PostgreSQL, stops its thread and connection)."""

    def __init__(self, close: Callable[[], None]) -> None:
        self._close = close

    def close(self) -> None:
        self._close()


class LocalChannels:
    """In-process delivery (SQLite: every service is in this process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: dict[str, list[Callable[[str], None]]] = {}

    def notify(self, channel: str, payload: str) -> None:
        with self._lock:
            callbacks = list(self._callbacks.get(channel, ()))
        for callback in callbacks:
            _deliver(callback, payload)

    def listen(self, channel: str, callback: Callable[[str], None]) -> Listener:
        with self._lock:
            self._callbacks.setdefault(channel, []).append(callback)

        def close() -> None:
            with self._lock:
                callbacks = self._callbacks.get(channel, [])
                if callback in callbacks:
                    callbacks.remove(callback)

        return Listener(close)


def _deliver(callback: Callable[[str], None], payload: str) -> None:
    try:
        callback(payload)
    except Exception:  # noqa: BLE001 - one listener's bug must not stop the others
        _log.exception("notification callback failed")


class PostgresListener:
    """A thread with its own autocommit connection in ``LISTEN``; reconnects by itself
    (with a growing pause) after the connection or the server goes away."""

    def __init__(self, connect: Callable[[], Any], channel: str,
                 callback: Callable[[str], None]) -> None:
        self._connect = connect
        self._channel = channel
        self._callback = callback
        self._stopping = threading.Event()
        self.connected = threading.Event()  # LISTEN is in place (tests wait on it)
        self._thread = threading.Thread(target=self._run, name=f"listen-{channel}",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from psycopg import Error as PsycopgError

        pause = 0.1
        while not self._stopping.is_set():
            try:
                with self._connect() as conn:
                    conn.autocommit = True
                    conn.execute(f"LISTEN {self._channel}")  # a checked identifier
                    self.connected.set()
                    pause = 0.1
                    # Woken when we were not listening: tell the callback once, so
                    # its owner re-checks what it may have missed.
                    _deliver(self._callback, "")
                    while not self._stopping.is_set():
                        for note in conn.notifies(timeout=0.5):
                            _deliver(self._callback, note.payload)
            except PsycopgError as e:
                self.connected.clear()
                if not self._stopping.is_set():
                    _log.warning("listening on %s failed (%s); reconnecting in %.1f s",
                                 self._channel, e.__class__.__name__, pause)
                self._stopping.wait(pause)
                pause = min(pause * 2, _RECONNECT_MAX_S)

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
