"""Who may use a console: the holder of its per-launch secret, from this machine's browser.

The console listens on 127.0.0.1 only, but every local user can connect there,
and every web page the user opens can make the browser send requests to it.
So each request must prove it comes from the user's own browser session:

* The launch secret (32 random bytes, in the URL ``confide console`` prints)
  is exchanged once per browser at ``/login?token=…`` for a session cookie
  (random, HttpOnly, SameSite=Strict, named after the port so that two
  consoles side by side keep theirs apart). Both are compared in constant time.
* The ``Host`` header must name the console itself (``127.0.0.1:PORT`` or
  ``localhost:PORT``): a DNS-rebinding page has another name.
* A request that changes anything is a POST that carries the session's CSRF
  token (a form field or the ``X-CSRF-Token`` header) and, when the browser
  sends an ``Origin``, the console's own origin.

Pure: no sockets; the HTTP handler asks, this answers.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie

__all__ = ["Guard", "Refusal", "Session"]


class Refusal(Exception):
    """A request the console refuses (403), with the reason shown to the browser."""


@dataclass(frozen=True)
class Session:
    session_id: str
    csrf_token: str


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class Guard:
    """The per-launch secret, the browser sessions it opened, and the checks."""

    def __init__(self, port: int, *, max_sessions: int, secret: str | None = None) -> None:
        self.port = port
        self.secret = secret or secrets.token_urlsafe(32)
        self.cookie_name = f"confide_console_{port}"
        self._hosts = (f"127.0.0.1:{port}", f"localhost:{port}")
        self._origins = tuple(f"http://{h}" for h in self._hosts)
        self._max_sessions = max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def login_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/login?token={self.secret}"

    def check_host(self, host: str | None) -> None:
        if host is None or not any(_same(host.lower(), h) for h in self._hosts):
            raise Refusal("wrong Host header: open the console at the address it printed")

    def check_origin(self, origin: str | None) -> None:
        """A POST's ``Origin`` (when the browser sent one) must be the console's own."""
        if origin is not None and not any(_same(origin.lower(), o) for o in self._origins):
            raise Refusal("cross-origin request refused")

    def exchange(self, token: str) -> tuple[Session, str]:
        """A new session for the launch secret; the session and its Set-Cookie value."""
        if not _same(token, self.secret):
            raise Refusal("wrong or missing console token: open the URL `confide console` "
                          "printed")
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32))
        with self._lock:
            self._sessions[session.session_id] = session
            while len(self._sessions) > self._max_sessions:
                self._sessions.popitem(last=False)
        cookie = (f"{self.cookie_name}={session.session_id}; Path=/; HttpOnly; "
                  "SameSite=Strict")
        return session, cookie

    def session(self, cookie_header: str | None) -> Session:
        """The session named by the request's cookie (compared with every one, in full)."""
        presented = ""
        if cookie_header:
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(cookie_header)
            except CookieError:
                jar = SimpleCookie()
            morsel = jar.get(self.cookie_name)
            presented = morsel.value if morsel is not None else ""
        found: Session | None = None
        with self._lock:
            known = list(self._sessions.values())
        for candidate in known:  # no early exit: the time does not depend on which matched
            if _same(presented, candidate.session_id) and presented:
                found = candidate
        if found is None:
            raise Refusal("no console session: open the URL `confide console` printed")
        return found

    @staticmethod
    def check_csrf(session: Session, token: str | None) -> None:
        if token is None or not _same(token, session.csrf_token):
            raise Refusal("missing or wrong CSRF token: reload the page and try again")
