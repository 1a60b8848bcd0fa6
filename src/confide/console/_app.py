"""The console's HTTP server: pages over the SDK, for one user, on 127.0.0.1.

The standard library's ``ThreadingHTTPServer`` serves Jinja2 templates
(autoescaped) and two static files; every request passes the ``Guard`` first
(Host, session cookie, and for POST the CSRF token and Origin). The console
process is the attested client: it holds the SDK ``Client`` of the user's
profile, and the browser never talks to the platform itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import jinja2

from ..client import AuditProofError, Client, ClientError
from ..config import Limits
from ._guard import Guard, Refusal, Session
from ._keyring import KeptFile, Keyring
from ._views import audit_rows, participant_rows, pending_rows, review_view, task_row

__all__ = ["Console", "HttpError"]

_TASK_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_DATA_ID = re.compile(r"^(input|output)-[0-9a-fA-F-]{32,36}$")
_FILE_NAME = re.compile(r"^[^/\\\x00-\x1f\x7f]{1,255}$")
_STATIC = {"console.css": "text/css; charset=utf-8",
           "console.js": "text/javascript; charset=utf-8"}
_NOTICES = {"approved": "You approved the task.", "rejected": "You rejected the task.",
            "invoked": "The task was started.", "output": "A new output was registered."}
_CHUNK = 64 * 1024
# The SDK's gRPC status names, as HTTP statuses for the error page.
_HTTP_OF = {"NOT_FOUND": 404, "PERMISSION_DENIED": 403, "UNAUTHENTICATED": 401,
            "INVALID_ARGUMENT": 400, "OUT_OF_RANGE": 400, "FAILED_PRECONDITION": 409,
            "ALREADY_EXISTS": 409, "RESOURCE_EXHAUSTED": 429}
_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; "
                                "img-src 'self'; connect-src 'self'; form-action 'self'; "
                                "base-uri 'none'; frame-ancestors 'none'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # The first URL carries the launch secret: no other site sees a referrer. (Not
    # no-referrer: then the browser sends "Origin: null" with the console's own forms.)
    "Referrer-Policy": "same-origin",
}


class HttpError(Exception):
    """A request the console answers with ``status`` and a message (no traceback)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Console:
    """One user's console: their SDK client, their file keys, and the guard."""

    def __init__(self, client: Client, keyring: Keyring, *, profile: str,
                 port: int = 0, limits: Limits | None = None) -> None:
        if client.user_id is None:
            raise ValueError("the console needs a logged-in client")
        self.client = client
        self.user = client.user_id
        self.keyring = keyring
        self.profile = profile
        self.limits = limits or Limits()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.guard = Guard(self.port, max_sessions=self.limits.console_max_sessions)
        self.httpd.console = self  # type: ignore[attr-defined]
        self._templates = jinja2.Environment(
            loader=jinja2.PackageLoader("confide.console", "templates"),
            autoescape=True, undefined=jinja2.StrictUndefined)
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------
    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def start(self) -> Console:
        """Serve in a background thread (tests); ``stop`` ends it."""
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    # -- pages -------------------------------------------------------------
    def render(self, name: str, session: Session, **context: Any) -> bytes:
        template = self._templates.get_template(name)
        context.setdefault("notice", "")
        return template.render(user=self.user, profile=self.profile,
                               csrf=session.csrf_token, **context).encode()

    def page_pending(self, session: Session) -> bytes:
        rows = pending_rows(self.client.pending_tasks(50))
        return self.render("pending.html", session, page="pending", tasks=rows)

    def my_tasks(self, limit: int = 20) -> list[dict[str, Any]]:
        ids = self.client.list_tasks(limit)
        return [task_row(self.client.get_task(t), self.user) for t in ids]

    def page_tasks(self, session: Session) -> bytes:
        return self.render("tasks.html", session, page="tasks", tasks=self.my_tasks())

    def page_task(self, session: Session, task_id: str, notice: str) -> bytes:
        review = review_view(self.client.review_task(task_id), self.user)
        task = task_row(self.client.get_task(task_id), self.user)
        kept = {e.data_id for e in self.keyring.entries()}
        return self.render("task.html", session, page="tasks", r=review, task=task,
                           kept=kept, notice=_NOTICES.get(notice, ""))

    def page_files(self, session: Session, notice: str) -> bytes:
        files = [{"data_id": e.data_id, "kind": e.kind, "name": e.name, "schema": e.schema,
                  "size": e.size, "cmac": e.cmac.hex()} for e in self.keyring.entries()]
        return self.render("files.html", session, page="files", files=files,
                           notice=_NOTICES.get(notice, ""),
                           max_upload=self.limits.console_max_upload_bytes)

    def page_audit(self, session: Session, query: str, task: str = "") -> bytes:
        rows: list[dict[str, Any]] = []
        refused = ""
        mine: list[dict[str, Any]] = []
        head: dict[str, Any] = {}
        unverified = ""
        if task and not _TASK_ID.match(task):
            raise HttpError(400, "not a task id")
        try:  # the caller's own entries, verified against the signed tree head
            view = self.client.participant_audit(task or None, 100)
            mine = participant_rows(view.entries)
            head = {"size": view.tree_head.tree_size, "root": view.tree_head.root.hex(),
                    "issued": view.tree_head.issued}
        except AuditProofError as e:
            unverified = e.message
        if query:
            if len(query) > self.limits.max_audit_query_chars:
                raise HttpError(400, f"the query is longer than "
                                     f"{self.limits.max_audit_query_chars} characters")
            try:
                rows = audit_rows(self.client.query_audit_logs(query, 100))
            except ClientError as e:
                if e.code != "PERMISSION_DENIED":
                    raise
                refused = ("The platform shows the audit log to platform administrators only; "
                           f"{self.user} is not one.")
        return self.render("audit.html", session, page="audit", query=query, rows=rows,
                           refused=refused, task=task, mine=mine, head=head,
                           unverified=unverified)

    # -- actions -----------------------------------------------------------
    def decide(self, task_id: str, action: str, form: dict[str, str]) -> str:
        if action == "approve":
            self.client.approve_task(task_id)
            return "approved"
        if action == "reject":
            reason = form.get("reason", "")
            if len(reason) > self.limits.max_rejection_reason_chars:
                raise HttpError(400, "the reason is too long")
            self.client.reject_task(task_id, reason)
            return "rejected"
        self.client.invoke_task(task_id)
        return "invoked"

    def new_output(self, name: str) -> str:
        if not _FILE_NAME.match(name):
            raise HttpError(400, "give the output a name (no '/', at most 255 characters)")
        out = self.client.new_output(file_name=name)
        self.keyring.save(KeptFile(out.data_id, "output", name, "", out.get_url, out.schema,
                                   out.key, out.iv))
        return out.data_id

    def upload(self, name: str, body: Callable[[int], bytes], length: int) -> dict[str, Any]:
        """Spool the browser's plaintext to a private temp file, then encrypt and upload it."""
        if not _FILE_NAME.match(name):
            raise HttpError(400, "the file name is missing or not allowed")
        if length > self.limits.console_max_upload_bytes:
            raise HttpError(413, f"the file is larger than the console accepts "
                                 f"({self.limits.console_max_upload_bytes} bytes)")
        with tempfile.TemporaryDirectory(prefix="confide-console-") as tmp:
            path = Path(tmp) / "plain"
            with open(path, "xb") as f:
                left = length
                while left:
                    chunk = body(min(left, _CHUNK))
                    if not chunk:
                        raise HttpError(400, "the upload ended early")
                    f.write(chunk)
                    left -= len(chunk)
            sealed = self.client.upload_file(path, file_name=name)
        data_id = self.client.register_upload(sealed)
        self.keyring.save(KeptFile(data_id, "input", name, sealed.url, sealed.url,
                                   sealed.schema, sealed.key, sealed.iv, sealed.cmac,
                                   sealed.size))
        return {"data_id": data_id, "name": name, "cmac": sealed.cmac.hex(), "size": length}

    def download(self, data_id: str, into: Path) -> KeptFile:
        try:
            entry = self.keyring.load(data_id)
        except KeyError:
            raise HttpError(404, f"profile {self.profile} holds no key for {data_id}") from None
        cmac = entry.cmac
        if entry.kind == "output":
            _owners, cmac = self.client.get_output_file(data_id)
            if not cmac:
                raise HttpError(409, f"{data_id} has not been written yet (its task has not "
                                     "finished successfully)")
        self.client.download_url_to(entry.get_url, into, schema=entry.schema, key=entry.key,
                                    iv=entry.iv, cmac=cmac)
        return entry


class _Handler(BaseHTTPRequestHandler):
    server_version = "confide-console"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    @property
    def console(self) -> Console:
        return self.server.console  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: Any) -> None:
        """No access log: URLs carry the launch secret."""

    # -- responses ---------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str = "text/html; charset=utf-8",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {**_HEADERS, **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:  # a refused request's body may be left unread
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _redirect(self, location: str, headers: dict[str, str] | None = None) -> None:
        self._send(303, b"", "text/plain", {"Location": location, **(headers or {})})

    def _json(self, data: Any, status: int = 200) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _error(self, status: int, message: str, session: Session | None) -> None:
        if self.headers.get("Accept", "").startswith("application/json") or session is None:
            if session is None:  # refused before a session: plain text, nothing of the user's
                self._send(status, message.encode() + b"\n", "text/plain; charset=utf-8")
            else:
                self._json({"error": message}, status)
            return
        self._send(status, self.console.render("error.html", session, page="", status=status,
                                               message=message))

    # -- dispatch ----------------------------------------------------------
    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        session: Session | None = None
        try:
            guard = self.console.guard
            guard.check_host(self.headers.get("Host"))
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if url.path == "/login" and method == "GET":
                _session, cookie = guard.exchange(query.get("token", ""))
                self._redirect("/", {"Set-Cookie": cookie})
                return
            session = guard.session(self.headers.get("Cookie"))
            if method == "POST":
                self._post(session, url.path)
            else:
                self._get(session, url.path, query)
        except Refusal as e:
            self.close_connection = True
            self._error(403, str(e), None)
        except HttpError as e:
            self.close_connection = True
            self._error(e.status, e.message, session)
        except ClientError as e:
            self._error(_HTTP_OF.get(e.code, 502), e.describe(), session)
        except OSError as e:
            if isinstance(e, BrokenPipeError | ConnectionResetError):
                return
            self._error(500, f"local error: {e.strerror or e}", session)

    def _get(self, session: Session, path: str, query: dict[str, str]) -> None:
        console = self.console
        parts = [p for p in path.split("/") if p]
        if not parts:
            self._send(200, console.page_pending(session))
        elif parts == ["tasks"]:
            self._send(200, console.page_tasks(session))
        elif len(parts) == 2 and parts[0] == "tasks" and _TASK_ID.match(parts[1]):
            self._send(200, console.page_task(session, parts[1], query.get("done", "")))
        elif parts == ["files"]:
            self._send(200, console.page_files(session, query.get("done", "")))
        elif (len(parts) == 3 and parts[0] == "files" and parts[2] == "download"
              and _DATA_ID.match(parts[1])):
            self._download(parts[1])
        elif parts == ["audit"]:
            self._send(200, console.page_audit(session, query.get("q", ""),
                                               query.get("task", "")))
        elif parts == ["api", "tasks"]:
            self._json(console.my_tasks())
        elif len(parts) == 3 and parts[:2] == ["api", "tasks"] and _TASK_ID.match(parts[2]):
            self._json(task_row(console.client.get_task(parts[2]), console.user))
        elif len(parts) == 2 and parts[0] == "static" and parts[1] in _STATIC:
            body = resources.files("confide.console").joinpath("static", parts[1]).read_bytes()
            self._send(200, body, _STATIC[parts[1]])
        else:
            raise HttpError(404, "no such page")

    def _post(self, session: Session, path: str) -> None:
        guard = self.console.guard
        guard.check_origin(self.headers.get("Origin"))
        length = self._content_length()
        parts = [p for p in path.split("/") if p]
        if parts == ["files", "upload"]:
            guard.check_csrf(session, self.headers.get("X-CSRF-Token"))
            name = unquote(self.headers.get("X-File-Name", ""))
            self._json(self.console.upload(name, self.rfile.read, length))
            return
        if length > self.console.limits.console_max_form_bytes:
            raise HttpError(413, "the form is too large")
        raw = self.rfile.read(length).decode("utf-8", "replace")
        form = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        guard.check_csrf(session, form.get("csrf") or self.headers.get("X-CSRF-Token"))
        if (len(parts) == 3 and parts[0] == "tasks" and _TASK_ID.match(parts[1])
                and parts[2] in ("approve", "reject", "invoke")):
            done = self.console.decide(parts[1], parts[2], form)
            self._redirect(f"/tasks/{quote(parts[1])}?done={done}")
        elif parts == ["files", "new-output"]:
            self.console.new_output(form.get("name", "").strip())
            self._redirect("/files?done=output")
        else:
            raise HttpError(404, "no such action")

    def _content_length(self) -> int:
        if "Transfer-Encoding" in self.headers:
            raise HttpError(411, "send a Content-Length (chunked bodies are not accepted)")
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise HttpError(400, "bad Content-Length") from None
        if length < 0:
            raise HttpError(400, "bad Content-Length")
        return length

    def _download(self, data_id: str) -> None:
        with tempfile.TemporaryDirectory(prefix="confide-console-") as tmp:
            path = Path(tmp) / "plain"
            entry = self.console.download(data_id, path)
            size = path.stat().st_size
            self.send_response(200)
            for name, value in _HEADERS.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", os.path.basename(entry.name)) or "data"
            self.send_header("Content-Disposition", f"attachment; filename=\"{ascii_name}\"; "
                                                    f"filename*=UTF-8''{quote(entry.name)}")
            self.end_headers()
            if self.command != "HEAD":
                with open(path, "rb") as f:
                    shutil.copyfileobj(f, self.wfile, _CHUNK)

