"""A TCP server on 127.0.0.1 that answers each connection with scripted raw bytes.

``http.server`` always writes well-formed framing; attacks on the receiver
(a lying or repeated Content-Length, a body cut mid-way, a chunked body over
the cap) need replies byte by byte.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

#: Given the hit number (1-based), the reply's parts: bytes are sent,
#: None closes the connection at once (after a shutdown, so the peer sees EOF).
Script = Callable[[int], list[bytes | None]]


@dataclass
class Scripted:
    port: int
    hits: list[bytes] = field(default_factory=list)  # each request's head

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _serve_one(conn: socket.socket, hit: int, script: Script, seen: list[bytes]) -> None:
    with conn:
        conn.settimeout(5)
        head = b""
        while b"\r\n\r\n" not in head:
            data = conn.recv(65536)
            if not data:
                return
            head += data
        seen.append(head)
        try:
            for part in script(hit):
                if part is None:
                    conn.shutdown(socket.SHUT_RDWR)
                    return
                conn.sendall(part)
        except OSError:
            return  # the client went away first (cap reached): expected in some tests


@contextmanager
def scripted(script: Script) -> Iterator[Scripted]:
    ls = socket.create_server(("127.0.0.1", 0))
    ls.settimeout(0.05)
    server = Scripted(ls.getsockname()[1])
    stop = threading.Event()
    accepted = [0]

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = ls.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted[0] += 1
            threading.Thread(
                target=_serve_one, args=(conn, accepted[0], script, server.hits), daemon=True
            ).start()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join()
        ls.close()


def reply(body: bytes, *, length: int | None = -1, extra: bytes = b"") -> bytes:
    """A 200 head (+ body); ``length`` -1 is the true length, None omits Content-Length."""
    head = b"HTTP/1.1 200 OK\r\nConnection: close\r\n" + extra
    if length is not None:
        head += b"Content-Length: %d\r\n" % (len(body) if length == -1 else length)
    return head + b"\r\n" + body
