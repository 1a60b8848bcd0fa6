"""A plain local HTTP file server, the kind a data owner might host ciphertext on.

GET serves files of one directory; PUT stores a new file there (write-once,
answer exactly 200 as Teaclave's file agent expects) so outputs can live on it too.
"""

from __future__ import annotations

import http.server
import os
import threading
from pathlib import Path


class _Handler(http.server.BaseHTTPRequestHandler):
    root: Path

    def _target(self) -> Path | None:
        name = self.path.split("?", 1)[0].lstrip("/")
        if not name or "/" in name or name.startswith("."):
            return None
        return self.root / name

    def do_GET(self) -> None:
        target = self._target()
        if target is None or not target.is_file():
            self.send_error(404)
            return
        body = target.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self) -> None:
        target = self._target()
        length = int(self.headers.get("Content-Length", "-1"))
        if target is None or length < 0:
            self.send_error(400)
            return
        body = self.rfile.read(length)
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            self.send_error(409)
            return
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class FileHost:
    """Serves ``root`` on 127.0.0.1 at a free port until :meth:`stop`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        handler = type("Handler", (_Handler,), {"root": root})
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def start(self) -> FileHost:
        self._thread.start()
        return self

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
