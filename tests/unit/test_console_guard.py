"""The console refuses every request that does not come from its user's own browser session.

Threat: another local user (or a web page the user opens) uses the console on
127.0.0.1 to act as the user. Each rule has its refusal here, against a real
console (in this process) whose SDK client points nowhere: a refused request
never reaches the platform. The browser walk-through is tests/cli/test_console.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterator

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from confide.client import Client
from confide.config import Limits
from confide.console import Console, Guard, KeptFile, Refusal

SMALL = dataclasses.replace(Limits(), console_max_form_bytes=256, console_max_upload_bytes=1000,
                            console_max_sessions=2)


class _NoKeys:
    def save(self, entry: KeptFile) -> None:
        raise AssertionError("a refused request saved a key")

    def load(self, data_id: str) -> KeptFile:
        raise KeyError(data_id)

    def entries(self) -> list[KeptFile]:
        return []



def _flip_last(token: str) -> str:
    """The token with its last character changed (never to itself)."""
    return token[:-1] + ("B" if token.endswith("A") else "A")

def _nowhere_certificate() -> bytes:
    """A self-signed certificate for a server that does not exist."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nowhere")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def console() -> Iterator[Console]:
    client = Client.connect("127.0.0.1", server_cert=_nowhere_certificate(),
                            authentication_port=1, frontend_port=1, timeout=1.0)
    client.use_token("alice", "token")
    app = Console(client, _NoKeys(), profile="alice", limits=SMALL).start()
    yield app
    app.stop()
    client.close()


def _base(app: Console) -> str:
    return f"http://127.0.0.1:{app.port}"


def _login(app: Console, http: httpx.Client) -> tuple[str, str]:
    """A browser session: its cookie header and CSRF token (read from a page)."""
    r = http.get(f"{_base(app)}/login", params={"token": app.guard.secret})
    assert r.status_code == 303 and r.headers["location"] == "/"
    set_cookie = r.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
    cookie = set_cookie.split(";", 1)[0]
    page = http.get(f"{_base(app)}/files", headers={"Cookie": cookie})
    assert page.status_code == 200, page.text
    m = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert m is not None
    return cookie, m.group(1)


def test_console_listens_on_loopback_only(console: Console) -> None:
    assert console.httpd.server_address[0] == "127.0.0.1"


def test_request_without_session_cookie_is_refused(console: Console) -> None:
    with httpx.Client() as http:
        for path in ("/", "/tasks", "/files", "/audit", "/api/tasks", "/static/console.js",
                     "/files/input-00000000-0000-0000-0000-000000000000/download"):
            r = http.get(_base(console) + path)
            assert r.status_code == 403, path
            assert "no console session" in r.text


def test_wrong_launch_token_is_refused(console: Console) -> None:
    with httpx.Client() as http:
        for params in ({"token": "x" * len(console.guard.secret)}, {}, {"token": ""}):
            r = http.get(f"{_base(console)}/login", params=params)
            assert r.status_code == 403 and "set-cookie" not in r.headers
            assert "wrong or missing console token" in r.text


def test_forged_or_foreign_cookie_is_refused(console: Console) -> None:
    with httpx.Client() as http:
        cookie, _csrf = _login(console, http)
        name, value = cookie.split("=", 1)
        assert name == f"confide_console_{console.port}"
        for forged in (f"{name}={_flip_last(value)}", f"{name}=", "confide_console_1=" + value,
                       f"{name}={'z' * len(value)}"):
            r = http.get(_base(console) + "/files", headers={"Cookie": forged})
            assert r.status_code == 403, forged


def test_wrong_host_header_is_refused(console: Console) -> None:
    """DNS rebinding: a page at evil.example resolving to 127.0.0.1 has another Host."""
    with httpx.Client() as http:
        cookie, _csrf = _login(console, http)
        for host in ("evil.example", f"evil.example:{console.port}", "127.0.0.1",
                     f"127.0.0.1:{console.port + 1}"):
            r = http.get(_base(console) + "/files", headers={"Cookie": cookie, "Host": host})
            assert r.status_code == 403, host
            assert "wrong Host header" in r.text
            r = http.get(f"{_base(console)}/login", params={"token": console.guard.secret},
                         headers={"Host": host})
            assert r.status_code == 403 and "set-cookie" not in r.headers
        ok = http.get(_base(console) + "/files",
                      headers={"Cookie": cookie, "Host": f"localhost:{console.port}"})
        assert ok.status_code == 200


def test_post_without_or_with_wrong_csrf_token_is_refused(console: Console) -> None:
    with httpx.Client() as http:
        cookie, csrf = _login(console, http)
        url = f"{_base(console)}/tasks/task-1/approve"
        for form in ({}, {"csrf": ""}, {"csrf": _flip_last(csrf)}):
            r = http.post(url, data=form, headers={"Cookie": cookie})
            assert r.status_code == 403, form
            assert "CSRF" in r.text
        r = http.post(f"{_base(console)}/files/upload", content=b"data",
                      headers={"Cookie": cookie, "X-File-Name": "a.txt"})
        assert r.status_code == 403 and "CSRF" in r.text


def test_post_from_another_origin_is_refused(console: Console) -> None:
    with httpx.Client() as http:
        cookie, csrf = _login(console, http)
        r = http.post(f"{_base(console)}/files/new-output", data={"csrf": csrf, "name": "x"},
                      headers={"Cookie": cookie, "Origin": "http://evil.example"})
        assert r.status_code == 403 and "cross-origin" in r.text
        r = http.post(f"{_base(console)}/files/new-output", data={"csrf": csrf, "name": "x"},
                      headers={"Cookie": cookie, "Origin": "null"})  # a sandboxed frame
        assert r.status_code == 403 and "cross-origin" in r.text


def test_state_is_never_changed_by_get(console: Console) -> None:
    with httpx.Client() as http:
        cookie, csrf = _login(console, http)
        for path in ("/tasks/task-1/approve", "/tasks/task-1/reject", "/files/new-output"):
            r = http.get(f"{_base(console)}{path}", params={"csrf": csrf},
                         headers={"Cookie": cookie})
            assert r.status_code == 404, path


def test_form_over_the_cap_is_refused(console: Console) -> None:
    with httpx.Client() as http:
        cookie, csrf = _login(console, http)
        body = f"csrf={csrf}&reason=".encode()
        over = body + b"x" * (SMALL.console_max_form_bytes + 1 - len(body))
        r = http.post(f"{_base(console)}/tasks/task-1/reject", content=over,
                      headers={"Cookie": cookie,
                               "Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 413


def test_upload_over_the_cap_is_refused_before_it_is_read(console: Console) -> None:
    with httpx.Client() as http:
        cookie, csrf = _login(console, http)
        r = http.post(f"{_base(console)}/files/upload",
                      content=b"x" * (SMALL.console_max_upload_bytes + 1),
                      headers={"Cookie": cookie, "X-CSRF-Token": csrf, "X-File-Name": "a.txt",
                               "Accept": "application/json"})
        assert r.status_code == 413 and "larger than the console accepts" in r.json()["error"]


def test_upload_with_a_path_in_its_name_is_refused(console: Console) -> None:
    with httpx.Client() as http:
        cookie, csrf = _login(console, http)
        for name in ("../x", "a%2Fb", "", "a%0Ab"):
            r = http.post(f"{_base(console)}/files/upload", content=b"abc",
                          headers={"Cookie": cookie, "X-CSRF-Token": csrf, "X-File-Name": name,
                                   "Accept": "application/json"})
            assert r.status_code == 400, name


def test_sessions_over_the_cap_drop_the_oldest(console: Console) -> None:
    with httpx.Client() as http:
        first, _ = _login(console, http)
        for _ in range(SMALL.console_max_sessions):
            _login(console, http)
        r = http.get(_base(console) + "/files", headers={"Cookie": first})
        assert r.status_code == 403


def test_pages_forbid_framing_and_outside_scripts(console: Console) -> None:
    with httpx.Client() as http:
        cookie, _ = _login(console, http)
        r = http.get(_base(console) + "/files", headers={"Cookie": cookie})
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert r.headers["referrer-policy"] == "same-origin"
        assert r.headers["cache-control"] == "no-store"


def test_platform_unreachable_is_a_clear_error_page(console: Console) -> None:
    # The page waits for the SDK's retries (~3 s alone): under a full run's load that
    # passed httpx's default 5 s; what is checked is the answer, not its speed.
    with httpx.Client(timeout=30) as http:
        cookie, _ = _login(console, http)
        r = http.get(_base(console) + "/", headers={"Cookie": cookie})
        assert r.status_code == 502
        assert "UNAVAILABLE" in r.text and "Traceback" not in r.text


def test_guard_compares_in_full() -> None:
    guard = Guard(8000, max_sessions=4)
    with pytest.raises(Refusal):
        guard.exchange(guard.secret + "x")
    with pytest.raises(Refusal):
        guard.exchange(guard.secret[:-1])
    session, cookie = guard.exchange(guard.secret)
    assert guard.session(cookie.split(";", 1)[0]) == session
    with pytest.raises(Refusal):
        guard.session(f"confide_console_8000={session.session_id}x")
    with pytest.raises(Refusal):
        guard.session('confide_console_8000="unterminated')
    with pytest.raises(Refusal):
        Guard.check_csrf(session, None)
    Guard.check_csrf(session, session.csrf_token)
