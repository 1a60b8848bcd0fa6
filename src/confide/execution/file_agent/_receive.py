"""One pinned HTTP/1.1 GET and its body, received into the destination's own buffer.

The request goes to the already checked IP address (``http.client`` over a
socket this module connects itself; for https the name is the TLS
``server_hostname``, so SNI and certificate checking use the name, not the
address). The body is read with ``readinto1`` straight into a buffer lent by
the destination (:class:`BufferedDestination`, asyncio's ``BufferedProtocol``
shape): one ``recv_into`` per call, no ``bytes`` object per chunk. A plain
file destination gets a 1 MiB :class:`WriteThrough` buffer in front of it.

Framing is checked here, not trusted to ``http.client`` (which silently
treats a malformed ``Content-Length`` as "read until close"): at most one
``Content-Length``, ASCII digits only, never together with
``Transfer-Encoding``, whose only accepted value is ``chunked``. A body that
ends before its ``Content-Length`` is a dropped connection; bytes after it
are never read (the connection is closed, keep-alive is never used).
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Protocol, runtime_checkable

from ._errors import FileAgentError, Timeout, TooLarge, TransferFailed

__all__ = [
    "RECEIVE_BUFFER_BYTES",
    "BufferedDestination",
    "Pinned",
    "Receiver",
    "Reply",
    "Transient",
    "WriteThrough",
    "open_get",
    "receive_body",
    "tls_failure",
]

RECEIVE_BUFFER_BYTES = 1 << 20
_DIGITS = re.compile(r"[0-9]{1,20}")
_CHUNKED_READ = 256 * 1024


class Transient(Exception):
    """A failure worth another attempt; ``final`` is raised if none is left."""

    def __init__(self, final: FileAgentError) -> None:
        super().__init__(str(final))
        self.final = final


class Receiver(Protocol):
    """What :func:`receive_body` fills: a lent buffer, or bytes to copy."""

    def get_buffer(self) -> memoryview:
        """A non-empty writable region for the next bytes."""
        ...

    def buffer_updated(self, n: int) -> None:
        """``n`` bytes were stored at the start of the last region."""
        ...

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Take bytes that are not in a lent region (data: URLs, files, chunked bodies)."""
        ...


@runtime_checkable
class BufferedDestination(Receiver, Protocol):
    """A download destination that lends its buffer (e.g. the worker's decrypting sink).

    The seek methods let a failed attempt be retried as for a seekable file.
    """

    def seekable(self) -> bool:
        """Whether :meth:`seek` back to :meth:`tell` can restart a failed transfer."""
        ...

    def tell(self) -> int:
        """Bytes taken so far."""
        ...

    def seek(self, offset: int, whence: int = 0) -> int:
        """Rewind (only called with an earlier :meth:`tell` value)."""
        ...

    def truncate(self, size: int | None = None) -> int:
        """Drop what follows the current position."""
        ...


class WriteThrough:
    """A :class:`BufferedDestination` in front of a plain binary file object."""

    def __init__(self, dst: BinaryIO, size: int = RECEIVE_BUFFER_BYTES) -> None:
        self._dst = dst
        self._buf = memoryview(bytearray(size))
        self._fill = 0

    def get_buffer(self) -> memoryview:
        return self._buf[self._fill :]

    def buffer_updated(self, n: int) -> None:
        self._fill += n
        if self._fill == len(self._buf):
            self.flush()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.flush()
        return self._dst.write(data)

    def flush(self) -> None:
        """Pass the buffered bytes on to the file object."""
        if self._fill:
            self._dst.write(self._buf[: self._fill])
            self._fill = 0


@dataclass(frozen=True)
class Pinned:
    """One request to one checked address.

    Attributes:
        address: the IP address (string form) the policy accepted.
        port: TCP port.
        tls: https.
        server_hostname: the name TLS verifies (SNI) -- the URL's host,
            also when it is an IP literal.
        target: path and query of the request line.
        headers: request headers (``Host`` carries the original name).
    """

    address: str
    port: int
    tls: bool
    server_hostname: str
    target: str
    headers: dict[str, str]


class _PinnedConnection(http.client.HTTPConnection):
    """``http.client`` connection to a fixed address; TLS verified for the name."""

    def __init__(
        self, pinned: Pinned, ssl_context: ssl.SSLContext, connect_s: float, read_s: float
    ) -> None:
        super().__init__(pinned.address, pinned.port, timeout=connect_s)
        self._pinned = pinned
        self._ssl_context = ssl_context
        self._connect_s = connect_s
        self._read_s = read_s

    def connect(self) -> None:
        sock = socket.create_connection((self._pinned.address, self._pinned.port), self._connect_s)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._pinned.tls:  # the handshake runs under the connect timeout
                sock = self._ssl_context.wrap_socket(
                    sock, server_hostname=self._pinned.server_hostname
                )
            sock.settimeout(self._read_s)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def tls_failure(e: BaseException) -> bool:
    """Whether ``e`` or one of its causes is an ``ssl.SSLError``."""
    seen: BaseException | None = e
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class Reply:
    """An open GET reply: status, headers, and the body framing it declared."""

    def __init__(self, url: str, conn: _PinnedConnection, resp: http.client.HTTPResponse) -> None:
        self.url = url
        self.status = resp.status
        self._conn = conn
        self._resp = resp
        self.length: int | None = None
        self.chunked = False

    def header(self, name: str) -> str | None:
        """The single value of ``name``; a repeated header is refused."""
        values = self._resp.headers.get_all(name) or []
        if len(values) > 1:
            raise TransferFailed(self.url, f"HTTP reply repeats the {name} header")
        return values[0] if values else None

    def check_framing(self) -> None:
        """Validate ``Content-Length`` / ``Transfer-Encoding`` (see the module docstring)."""
        te, cl = self.header("Transfer-Encoding"), self.header("Content-Length")
        if te is not None:
            if cl is not None:
                raise TransferFailed(self.url, "HTTP reply has both Content-Length and "
                                     "Transfer-Encoding")  # fmt: skip
            if te.strip().lower() != "chunked":
                raise TransferFailed(self.url, f"unsupported Transfer-Encoding {te[:40]!r}")
            self.chunked = True
        elif cl is not None:
            if not _DIGITS.fullmatch(cl.strip()):
                raise TransferFailed(self.url, "malformed Content-Length")
            self.length = int(cl.strip())
        if self.status in (204, 304):
            self.length, self.chunked = 0, False

    def readinto1(self, region: memoryview) -> int:
        """Buffered header leftovers first, else one ``recv_into`` (not chunked)."""
        fp = self._resp.fp
        return fp.readinto1(region) if fp is not None else 0

    def read1(self, n: int) -> bytes:
        """At most ``n`` bytes of a chunked body, decoded; ``b""`` at its end."""
        return self._resp.read1(n)

    def close(self) -> None:
        """Close the reply and its connection (never reused)."""
        self._resp.close()
        self._conn.close()


def open_get(
    url: str, pinned: Pinned, ssl_context: ssl.SSLContext, *, connect_s: float, read_s: float
) -> Reply:
    """Connect to the pinned address, send the GET, read the status and headers.

    Raises:
        Transient: connection refused/reset, connect timeout, a connection
            closed before or while replying (worth another attempt).
        Timeout: no data within the read timeout.
        TransferFailed: TLS failure, malformed reply.
    """
    conn = _PinnedConnection(pinned, ssl_context, connect_s, read_s)
    try:
        try:
            conn.connect()
        except TimeoutError as e:
            raise Transient(Timeout(url, "connecting timed out")) from e
        except OSError as e:
            if tls_failure(e):
                raise TransferFailed(url, f"TLS failure: {e}") from e
            raise Transient(TransferFailed(url, f"cannot connect: {e}")) from e
        try:
            conn.putrequest("GET", pinned.target, skip_host=True, skip_accept_encoding=True)
            for name, value in pinned.headers.items():
                conn.putheader(name, value)
            conn.putheader("Connection", "close")
            conn.endheaders()
            resp = conn.getresponse()
        except TimeoutError as e:
            raise Timeout(url, "no data within the socket timeout (ReadTimeout)") from e
        except (OSError, http.client.IncompleteRead) as e:  # incl. RemoteDisconnected
            raise Transient(TransferFailed(url, f"connection failed mid-transfer: {e!r}")) from e
        except http.client.HTTPException as e:
            raise TransferFailed(url, f"malformed HTTP reply: {type(e).__name__}") from e
    except BaseException:
        conn.close()
        raise
    return Reply(url, conn, resp)


def receive_body(
    reply: Reply,
    dst: Receiver,
    *,
    cap: int,
    deadline: float,
    clock: Callable[[], float],
    received: list[int],
) -> int:
    """Read the body into ``dst`` (at most ``cap`` bytes); return its length.

    ``received[0]`` counts the bytes handed to ``dst`` so far (the caller
    decides from it whether a failed attempt may be retried). Exceptions
    raised by ``dst`` other than ``OSError`` propagate unchanged.

    Raises:
        TooLarge: more than ``cap`` bytes (``dst`` never sees byte cap + 1).
        Timeout: read timeout, or the whole-transfer ``deadline`` passed.
        Transient: the connection failed or ended before ``Content-Length``.
        TransferFailed: malformed chunked framing, or ``dst`` failed to write.
    """
    url = reply.url
    length = reply.length
    if length is not None and length > cap:
        raise TooLarge(url, f"Content-Length {length} exceeds the cap of {cap} bytes")
    total = 0
    while length is None or total < length:
        if clock() > deadline:
            raise Timeout(url, "transfer deadline reached")
        want = cap + 1 - total if length is None else length - total
        try:
            if reply.chunked:
                data: bytes | memoryview = reply.read1(min(want, _CHUNKED_READ))
                n = len(data)
            else:
                region = dst.get_buffer()
                if len(region) > want:
                    region = region[:want]
                n = reply.readinto1(region)
                data = region
        except TimeoutError as e:
            raise Timeout(url, "no data within the socket timeout (ReadTimeout)") from e
        except (OSError, http.client.IncompleteRead) as e:
            raise Transient(TransferFailed(url, f"connection failed mid-transfer: {e!r}")) from e
        except http.client.HTTPException as e:
            raise TransferFailed(url, f"malformed chunked body: {type(e).__name__}") from e
        if not n:
            break
        total += n
        if total > cap:
            raise TooLarge(url, f"body exceeds the cap of {cap} bytes")
        received[0] = total
        try:
            if reply.chunked:
                dst.write(data)
            else:
                dst.buffer_updated(n)
        except OSError as e:
            raise TransferFailed(url, f"writing the download failed: {e}") from e
    if length is not None and total < length:
        raise Transient(
            TransferFailed(
                url, f"connection failed mid-transfer: body ended after {total} of {length} bytes"
            )
        )
    return total
