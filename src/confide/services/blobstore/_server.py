"""The blob store's HTTP(S) server (stdlib ``http.server``).

Requests are authorised only by a presigned URL (see ``_presign``). Objects live
under ``<data_dir>/blobs/<name>``; an upload is streamed to a temporary file
under ``<data_dir>/blobs/.tmp/`` and then hard-linked to its name, which fails
if the name exists: objects are written once and never seen half-written.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import re
import socket
import ssl
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from confide.config import Limits

from ...crypto.records import VersionedKey, as_versioned
from ._errors import BlobStoreError, InvalidObjectName, SignatureExpired, SignatureInvalid
from ._presign import (
    BLOB_PATH_PREFIX,
    MIN_KEY_BYTES,
    parse_kid_param,
    presign_url,
    validate_object_name,
    verify_presigned,
)

__all__ = ["BlobStore"]

_log = logging.getLogger("confide.services.blobstore")
_CHUNK = 256 * 1024
_TLS_WRITE = 1 << 20  # one SSL_write per MiB: OpenSSL cuts it into 16 KiB records
_TMP_DIR = ".tmp"
_QUERY = re.compile(r"\?[^\s'\"]*")


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # listen backlog; bursts of clients are normal

    def __init__(self, address: tuple[str, int], store: BlobStore, slots: int) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.store = store
        self._slots = threading.BoundedSemaphore(slots)
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            _log.warning("blob store: connection limit reached, dropping a connection")
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log.debug("blob store: connection from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "confide-blobstore"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        # applies to the TLS handshake too (it runs on the first read)
        self.connection.settimeout(self.server.store.limits.blob_read_timeout_s)

    def log_message(self, format: str, *args: Any) -> None:
        text = _QUERY.sub("?<redacted>", format % args)  # never log a signature
        _log.info("blob store %s: %s", self.client_address[0], text[:512])

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = str(getattr(self, "path", "")).partition("?")[0]
        command = getattr(self, "command", None)
        _log.info("blob store %s %s %s", command, _QUERY.sub("?<redacted>", path[:256]), code)

    def _reply(self, status: int, message: str) -> None:
        body = (message + "\n").encode()
        self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _authorize(self, method: str) -> str:
        store = self.server.store
        if len(self.path) > store.limits.max_url_chars:
            raise _Refused(414, "request target too long")
        parts = urlsplit(self.path)
        if not parts.path.startswith(BLOB_PATH_PREFIX):
            raise _Refused(404, "not a blob path")
        name = parts.path[len(BLOB_PATH_PREFIX) :]
        try:
            validate_object_name(name, store.limits.max_blob_name_chars)
        except InvalidObjectName as e:
            raise _Refused(400, f"invalid object name: {e}") from e
        try:
            query = parse_qs(parts.query, strict_parsing=True, max_num_fields=4)
        except ValueError as e:
            raise _Refused(403, "signature invalid: malformed query") from e
        if set(query) - {"kid"} != {"expires", "sig"} or any(len(v) != 1
                                                               for v in query.values()):
            raise _Refused(403, "signature invalid: need exactly one expires and one sig "
                           "(and at most one kid)")
        try:
            kid = parse_kid_param(query["kid"][0]) if "kid" in query else None
            key = store.keys.key(1 if kid is None else kid)
            if key is None:
                raise SignatureInvalid(f"signed by an unknown key (presign-{kid})")
            verify_presigned(
                key, method, name, query["expires"][0], query["sig"][0], now=store.clock(),
                kid=kid,
            )
        except SignatureExpired as e:
            raise _Refused(403, f"signature expired: {e}") from e
        except BlobStoreError as e:
            raise _Refused(403, f"signature invalid: {e}") from e
        return name

    def _dispatch(self, handler: Callable[[], None]) -> None:
        try:
            handler()
        except _Refused as r:
            self._reply(r.status, r.message)
        except (ConnectionError, TimeoutError, ssl.SSLError):
            self.close_connection = True
        except OSError:
            _log.exception("blob store: storage error")
            self._reply(500, "storage error")

    def do_GET(self) -> None:
        self._dispatch(self._get)

    def do_PUT(self) -> None:
        self._dispatch(self._put)

    def _other(self) -> None:
        self._reply(405, "method not allowed")

    do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _other

    def _get(self) -> None:
        name = self._authorize("GET")
        path = self.server.store.object_path(name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR):
                raise _Refused(404, "no such object") from e
            raise _Refused(500, "cannot open object") from e
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise _Refused(404, "no such object")
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(info.st_size))
            self.send_header("Connection", "close")
            self.end_headers()
            self._send_body(f, info.st_size)

    def _send_body(self, f: io.BufferedReader, size: int) -> None:
        """Send ``size`` bytes of ``f``: ``sendfile`` on plain TCP, 1 MiB writes over TLS."""
        if not isinstance(self.connection, ssl.SSLSocket):
            # Kernel to kernel: no copy through Python. socket.sendfile waits
            # for writability under the socket's timeout (blob_read_timeout_s).
            self.connection.sendfile(f, 0, size)
            return
        buf = bytearray(_TLS_WRITE)
        view = memoryview(buf)
        left = size
        while left > 0:
            n = f.readinto(view[: min(_TLS_WRITE, left)])
            if not n:
                break
            left -= n
            self.connection.sendall(view[:n])

    def _content_length(self) -> int:
        if self.headers.get("Transfer-Encoding") is not None:
            raise _Refused(411, "chunked uploads are not accepted; send Content-Length")
        values = self.headers.get_all("Content-Length") or []
        if len(values) != 1:
            raise _Refused(411, "exactly one Content-Length header is required")
        if not values[0].strip().isdigit():
            raise _Refused(400, "malformed Content-Length")
        length = int(values[0])
        cap = self.server.store.limits.max_blob_bytes
        if length > cap:
            raise _Refused(413, f"object of {length} bytes exceeds the cap of {cap} bytes")
        return length

    def _put(self) -> None:
        name = self._authorize("PUT")
        length = self._content_length()
        store = self.server.store
        final = store.object_path(name)
        if os.path.lexists(final):
            raise _Refused(409, "object exists; objects are written once")
        try:
            final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise _Refused(409, "object name collides with an existing object") from e
        fd, tmp = tempfile.mkstemp(dir=store.blob_dir / _TMP_DIR, prefix="put-")
        try:
            with os.fdopen(fd, "wb") as out:
                self._receive(out, length)
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(tmp, final)
            except FileExistsError as e:
                raise _Refused(409, "object exists; objects are written once") from e
        finally:
            os.unlink(tmp)
        self._reply(200, "stored")

    def _receive(self, out: Any, length: int) -> None:
        left = length
        while left > 0:
            try:
                chunk = self.rfile.read(min(_CHUNK, left))
            except TimeoutError as e:
                raise _Refused(408, "upload timed out") from e
            if not chunk:
                raise _Refused(400, f"body ended after {length - left} of {length} bytes")
            left -= len(chunk)
            out.write(chunk)


class BlobStore:
    """An HTTP(S) store for ciphertext, reached through presigned URLs.

    Args:
        data_dir: the platform's data directory; objects go to ``<data_dir>/blobs``.
        key: HMAC-SHA256 key for presigned URLs (>= 32 bytes), or the platform's
            versioned presign keys (``confide.keys``): URLs are signed by the
            active one and name it; those of older versions verify until they expire.
        limits: ``max_blob_bytes``, ``max_blob_name_chars``, ``max_url_chars``,
            ``blob_read_timeout_s``, ``max_blob_connections``.
        host: address to bind (``127.0.0.1`` for the embedded default).
        port: port to bind; 0 picks a free one (see :attr:`port`).
        ssl_context: server-side TLS context; ``None`` serves plain HTTP.
        clock: Unix seconds, for expiry checks (tests inject one).
        public_host: host name put in presigned URLs (default: ``host``).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        key: bytes | VersionedKey,
        *,
        limits: Limits,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
        public_host: str | None = None,
    ) -> None:
        self.keys = as_versioned(key)
        if len(self.keys.active()[1]) < MIN_KEY_BYTES:
            raise ValueError(f"blob store key must have at least {MIN_KEY_BYTES} bytes")
        self.blob_dir = Path(data_dir) / "blobs"
        self.limits = limits
        self.clock = clock
        self._host = host
        self._port = port
        self._ssl_context = ssl_context
        self._public_host = public_host or host
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError("blob store is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http(s)://host:port`` as it appears in presigned URLs."""
        scheme = "https" if self._ssl_context is not None else "http"
        host = f"[{self._public_host}]" if ":" in self._public_host else self._public_host
        return f"{scheme}://{host}:{self.port}"

    def object_path(self, name: str) -> Path:
        """Where a (validated) object name is stored."""
        validate_object_name(name, self.limits.max_blob_name_chars)
        return self.blob_dir / name

    def presign(self, object_name: str, method: str, expires_at: int) -> str:
        """A presigned URL for ``method`` on ``object_name`` valid until ``expires_at``.

        Raises:
            InvalidObjectName: bad name.
            ValueError: bad method or expiry.
        """
        version, key = self.keys.active()
        return presign_url(
            self.base_url,
            key,
            object_name,
            method,
            expires_at,
            max_name_chars=self.limits.max_blob_name_chars,
            kid=version,
        )

    def start(self) -> None:
        """Bind and serve in a background thread."""
        if self._server is not None:
            raise RuntimeError("blob store already started")
        (self.blob_dir / _TMP_DIR).mkdir(mode=0o700, parents=True, exist_ok=True)
        server = _Server((self._host, self._port), self, self.limits.max_blob_connections)
        if self._ssl_context is not None:
            server.socket = self._ssl_context.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket (in-flight requests are abandoned)."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        server.server_close()
        thread.join()
        self._server = None
        self._thread = None
