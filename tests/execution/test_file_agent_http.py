"""http(s) transfers against real local servers on 127.0.0.1 (ephemeral ports).

No test sends a packet to any address other than loopback: refusals of
private/link-local/public addresses happen before a connection is attempted,
and the tests check that the server saw no request.
"""

from __future__ import annotations

import datetime
import io
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from confide.config import Limits
from confide.execution.file_agent import (
    FileAgent,
    PolicyViolation,
    Timeout,
    TooLarge,
    TransferFailed,
    UrlPolicy,
)

BODY = b"0123456789" * 10  # 100 bytes


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class App:
    seen: list[Seen] = field(default_factory=list)
    hits: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base: str = ""

    def count(self, route: str) -> int:
        with self.lock:
            return self.hits[route]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def do_GET(self) -> None:
        self._route()

    def do_PUT(self) -> None:
        self._route()

    def _route(self) -> None:
        app: App = self.server.app
        parts = urlsplit(self.path)
        segs = parts.path.strip("/").split("/")
        route = segs[0]
        body = b""
        if self.command == "PUT" and "Content-Length" in self.headers:
            body = self.rfile.read(int(self.headers["Content-Length"]))
        with app.lock:
            app.hits[route] += 1
            hit = app.hits[route]
            app.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
        arg = segs[1] if len(segs) > 1 else ""
        if route == "file":
            self._send(200, BODY)
        elif route == "bytes":
            self._send(200, b"a" * int(arg))
        elif route == "status":
            self._send(int(arg))
        elif route == "nocl":  # body delimited by connection close
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"b" * int(arg))
            self.close_connection = True
        elif route == "slow":
            self.send_response(200)
            self.send_header("Content-Length", "10")
            self.end_headers()
            self.wfile.write(b"ab")
            self.wfile.flush()
            time.sleep(1.5)
            self.close_connection = True
        elif route == "drip":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b"d")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass
            self.close_connection = True
        elif route == "flaky":  # 503 for the first N hits
            if hit <= int(arg):
                self._send(503, b"busy")
            else:
                self._send(200, BODY)
        elif route == "cut":  # first hit: half the body then the connection dies
            if hit == 1:
                self.send_response(200)
                self.send_header("Content-Length", str(len(BODY)))
                self.end_headers()
                self.wfile.write(BODY[:50])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
            else:
                self._send(200, BODY)
        elif route == "reset":  # first hit: close without any response
            if hit == 1:
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
            else:
                self._send(200, BODY)
        elif route == "redirect":
            to = parse_qs(parts.query)["to"][0]
            self._send(int(arg or 302), headers={"Location": to})
        elif route == "loop":
            self._send(302, headers={"Location": "/loop"})
        elif route == "put":
            self._send(int(arg))
        elif route == "flakyput":
            self._send(503 if hit == 1 else 200)
        else:
            self._send(404)


@dataclass
class Server:
    app: App
    port: int
    url: str


def _serve(ssl_context: ssl.SSLContext | None = None) -> Iterator[Server]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.block_on_close = False
    if ssl_context is not None:
        httpd.socket = ssl_context.wrap_socket(
            httpd.socket, server_side=True, do_handshake_on_connect=False
        )
    app = App()
    httpd.app = app  # type: ignore[attr-defined]
    port = httpd.server_address[1]
    scheme = "https" if ssl_context else "http"
    app.base = f"{scheme}://127.0.0.1:{port}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield Server(app, int(port), app.base)
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    yield from _serve()


LIMITS = Limits(
    file_read_timeout_s=0.3,
    file_connect_timeout_s=2.0,
    file_transfer_timeout_s=10.0,
    file_retry_backoff_s=0.01,
    file_max_attempts=3,
    max_redirects=3,
    max_url_chars=2048,
)


class Resolver:
    """An injected DNS: a fixed table, and a record of every question."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.table[host]


def make_agent(
    policy: UrlPolicy | None = None,
    resolver: Resolver | None = None,
    limits: Limits = LIMITS,
    ssl_context: ssl.SSLContext | None = None,
    sleeps: list[float] | None = None,
) -> FileAgent:
    record = sleeps if sleeps is not None else []
    return FileAgent(
        policy or UrlPolicy(allow_loopback=True),
        limits,
        resolver=resolver or Resolver({}),
        ssl_context=ssl_context,
        sleep=record.append,
    )


def get(agent: FileAgent, url: str, max_bytes: int = 1000) -> bytes:
    out = io.BytesIO()
    n = agent.download(url, out, max_bytes=max_bytes)
    assert n == len(out.getvalue())
    return out.getvalue()


class NonSeekable(io.RawIOBase):
    def __init__(self, data: bytes = b"") -> None:
        self._inner = io.BytesIO(data)
        self.written = bytearray()

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, b: Any) -> int:
        data = self._inner.read(len(b))
        b[: len(data)] = data
        return len(data)

    def write(self, b: Any) -> int:
        self.written += bytes(b)
        return len(b)


# --- basic GET / schemes ---------------------------------------------------------


def test_downloads_body(server: Server) -> None:
    assert get(make_agent(), server.url + "/file") == BODY


def test_accepts_any_2xx_reply_for_download(server: Server) -> None:
    assert get(make_agent(), server.url + "/status/204") == b""


@pytest.mark.parametrize("status", [300, 304, 403, 404, 500])
def test_rejects_non_2xx_download(server: Server, status: int) -> None:
    with pytest.raises(TransferFailed, match=rf"HTTP {status}; a 2xx reply is required"):
        get(make_agent(), server.url + f"/status/{status}")


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "gopher://127.0.0.1/x", "ldap://h/x"])
def test_rejects_disallowed_scheme(url: str) -> None:
    with pytest.raises(PolicyViolation, match=r"scheme '\w+' is not allowed"):
        get(make_agent(), url)


def test_rejects_url_over_length_cap_before_any_request(server: Server) -> None:
    url = server.url + "/file?" + "q" * (2048 - len(server.url + "/file?"))
    assert len(url) == 2048
    with pytest.raises(TransferFailed, match=r"HTTP 404; a 2xx reply"):  # at the cap: sent
        get(make_agent(), url.replace("/file?", "/none?"))
    with pytest.raises(PolicyViolation, match=r"URL has 2049 chars, more than the cap of 2048"):
        get(make_agent(), url + "q")
    with pytest.raises(PolicyViolation, match=r"URL has 2049 chars, more than the cap of 2048"):
        make_agent().upload(url + "q", io.BytesIO(b"x"), 1)
    assert server.app.count("file") == 0


def test_rejects_http_when_policy_allows_only_https(server: Server) -> None:
    agent = make_agent(UrlPolicy(schemes=frozenset({"https"}), allow_loopback=True))
    with pytest.raises(PolicyViolation, match=r"scheme 'http' is not allowed"):
        get(agent, server.url + "/file")
    assert server.app.count("file") == 0


def test_rejects_loopback_address_by_default(server: Server) -> None:
    with pytest.raises(PolicyViolation, match=r"address 127.0.0.1 is loopback and not allowed"):
        get(make_agent(UrlPolicy()), server.url + "/file")
    assert server.app.count("file") == 0


def test_rejects_ipv6_mapped_loopback_literal(server: Server) -> None:
    url = f"http://[::ffff:127.0.0.1]:{server.port}/file"
    with pytest.raises(PolicyViolation, match=r"address ::ffff:7f00:1 is loopback and not allowed"):
        get(make_agent(UrlPolicy()), url)


@pytest.mark.parametrize(
    "address", ["10.0.0.7", "192.168.0.1", "169.254.169.254", "[fd00::1]", "[fe80::1]", "0.0.0.0"]
)
def test_rejects_private_address_literals_without_connecting(address: str) -> None:
    with pytest.raises(
        PolicyViolation, match=r"is (private|link-local|unspecified) and not allowed"
    ):
        get(make_agent(UrlPolicy(allow_loopback=True)), f"http://{address}/latest/meta-data")


def test_rejects_host_not_in_allow_list(server: Server) -> None:
    resolver = Resolver({"other.test": ["127.0.0.1"]})
    agent = make_agent(UrlPolicy(hosts=("files.test",), allow_loopback=True), resolver)
    with pytest.raises(PolicyViolation, match=r"host 'other.test' is not in the allowed hosts"):
        get(agent, f"http://other.test:{server.port}/file")
    assert resolver.asked == []  # refused before resolving


# --- DNS rebinding defence -------------------------------------------------------


def test_connects_to_checked_address_and_keeps_host_header(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo

    def no_second_resolution(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "files.test":
            raise AssertionError("httpx resolved the name itself")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", no_second_resolution)
    resolver = Resolver({"files.test": ["127.0.0.1"]})
    agent = make_agent(UrlPolicy(hosts=("files.test",), allow_loopback=True), resolver)
    assert get(agent, f"http://files.test:{server.port}/file") == BODY
    assert resolver.asked == ["files.test"]
    assert server.app.seen[-1].headers["Host"] == f"files.test:{server.port}"


def test_rejects_name_resolving_to_loopback_when_loopback_disallowed(server: Server) -> None:
    resolver = Resolver({"rebind.test": ["127.0.0.1"]})
    with pytest.raises(PolicyViolation, match=r"address 127.0.0.1 is loopback and not allowed"):
        get(make_agent(UrlPolicy(), resolver), f"http://rebind.test:{server.port}/file")
    assert server.app.count("file") == 0


def test_rejects_name_when_any_resolved_address_is_disallowed(server: Server) -> None:
    # a public answer first does not hide a private second answer
    resolver = Resolver({"mixed.test": ["93.184.216.34", "::ffff:10.1.1.1"]})
    with pytest.raises(PolicyViolation, match=r"address ::ffff:a01:101 is private"):
        get(make_agent(UrlPolicy(), resolver), f"http://mixed.test:{server.port}/file")


def test_unresolvable_host_is_transfer_failure() -> None:
    with pytest.raises(TransferFailed, match=r"cannot resolve host 'nowhere.test'"):
        get(make_agent(), "http://nowhere.test/x")


def test_tries_next_checked_address_when_first_refuses(server: Server) -> None:
    resolver = Resolver({"multi.test": ["127.0.0.2", "127.0.0.1"]})  # nothing on .2
    assert get(make_agent(resolver=resolver), f"http://multi.test:{server.port}/file") == BODY


# --- redirects -------------------------------------------------------------------


def redirect(server: Server, to: str, status: int = 302) -> str:
    return f"{server.url}/redirect/{status}?to={quote(to, safe='')}"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_follows_redirect_within_policy(server: Server, status: int) -> None:
    assert get(make_agent(), redirect(server, "/file", status)) == BODY
    assert server.app.count("file") == 1


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://10.0.0.1/x", "address 10.0.0.1 is private and not allowed"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is link-local"),
        ("http://[::ffff:192.168.0.1]/", "is private and not allowed"),
        ("http://rebind.test/x", "address 10.9.9.9 is private and not allowed"),
        ("file:///etc/passwd", "redirect to a 'file' URL refused"),
        ("data:text/plain;base64,aGk=", "redirect to a 'data' URL refused"),
        ("fusion:///TEACLAVE_FUSION_BASE/x", "redirect to a 'fusion' URL refused"),
        ("ftp://example.com/x", "redirect to a 'ftp' URL refused"),
    ],
)
def test_rejects_redirect_to_forbidden_target(server: Server, target: str, reason: str) -> None:
    agent = make_agent(resolver=Resolver({"rebind.test": ["10.9.9.9"]}))
    with pytest.raises(PolicyViolation, match=reason):
        get(agent, redirect(server, target))


def test_rejects_redirect_to_other_loopback_port(server: Server) -> None:
    policy = UrlPolicy(allow_loopback=True, loopback_ports=frozenset({server.port}))
    with pytest.raises(PolicyViolation, match=r"loopback port 22 is not allowed"):
        get(make_agent(policy), redirect(server, "http://127.0.0.1:22/"))


def test_rejects_redirect_to_host_outside_allow_list(server: Server) -> None:
    policy = UrlPolicy(hosts=("127.0.0.1",), allow_loopback=True)
    with pytest.raises(PolicyViolation, match=r"host 'elsewhere.test' is not in the allowed"):
        get(make_agent(policy), redirect(server, "http://elsewhere.test/x"))


def test_follows_exactly_max_redirects_and_refuses_one_more(server: Server) -> None:
    chain = "/file"
    for _ in range(3):
        chain = redirect(server, chain)
    assert get(make_agent(), chain) == BODY
    with pytest.raises(TransferFailed, match=r"more than 3 redirects"):
        get(make_agent(), redirect(server, chain))


def test_rejects_too_many_redirects(server: Server) -> None:
    with pytest.raises(TransferFailed, match=r"more than 3 redirects"):
        get(make_agent(), server.url + "/loop")
    assert server.app.count("loop") == 4


def test_rejects_overlong_redirect_location(server: Server) -> None:
    with pytest.raises(PolicyViolation, match=r"more than the cap of 2048"):
        get(make_agent(), redirect(server, "/file?" + "q" * 2100))


def test_redirect_without_location_fails(server: Server) -> None:
    with pytest.raises(TransferFailed, match=r"HTTP 302 without a Location header"):
        get(make_agent(), server.url + "/status/302")


# --- size caps -------------------------------------------------------------------


def test_accepts_body_at_cap(server: Server) -> None:
    assert get(make_agent(), server.url + "/bytes/100", max_bytes=100) == b"a" * 100


def test_rejects_content_length_over_cap_before_reading(server: Server) -> None:
    with pytest.raises(TooLarge, match=r"Content-Length 100 exceeds the cap of 99 bytes"):
        get(make_agent(), server.url + "/bytes/100", max_bytes=99)


def test_rejects_body_without_content_length_over_cap(server: Server) -> None:
    out = io.BytesIO()
    with pytest.raises(TooLarge, match=r"body exceeds the cap of 99 bytes"):
        make_agent().download(server.url + "/nocl/100000", out, max_bytes=99)
    assert len(out.getvalue()) <= 99
    assert get(make_agent(), server.url + "/nocl/99", max_bytes=99) == b"b" * 99


def test_limits_ceiling_applies_below_callers_max_bytes(server: Server) -> None:
    limits = Limits(**{**LIMITS.__dict__, "max_download_bytes": 50})
    with pytest.raises(TooLarge, match=r"exceeds the cap of 50 bytes"):
        get(make_agent(limits=limits), server.url + "/file", max_bytes=10**9)


# --- timeouts --------------------------------------------------------------------


def test_slow_server_hits_read_timeout(server: Server) -> None:
    started = time.monotonic()
    with pytest.raises(Timeout, match=r"no data within the socket timeout \(ReadTimeout\)"):
        get(make_agent(), server.url + "/slow")
    assert time.monotonic() - started < 1.4
    assert server.app.count("slow") == 1  # a read timeout is not retried


def test_slow_drip_hits_whole_transfer_deadline(server: Server) -> None:
    limits = Limits(**{**LIMITS.__dict__, "file_transfer_timeout_s": 0.5})
    started = time.monotonic()
    with pytest.raises(Timeout, match=r"transfer deadline reached"):
        get(make_agent(limits=limits), server.url + "/drip")
    assert time.monotonic() - started < 2.0


# --- retries ---------------------------------------------------------------------


def test_retries_transient_503_then_succeeds(server: Server) -> None:
    sleeps: list[float] = []
    assert get(make_agent(sleeps=sleeps), server.url + "/flaky/2") == BODY
    assert server.app.count("flaky") == 3
    assert sleeps == [0.01, 0.02]  # backoff doubles


def test_gives_up_after_bounded_attempts(server: Server) -> None:
    with pytest.raises(TransferFailed, match=r"HTTP 503"):
        get(make_agent(), server.url + "/flaky/99")
    assert server.app.count("flaky") == 3


def test_retries_connection_closed_without_response(server: Server) -> None:
    assert get(make_agent(), server.url + "/reset") == BODY
    assert server.app.count("reset") == 2


def test_retry_after_partial_body_rewinds_seekable_destination(server: Server) -> None:
    out = io.BytesIO(b"keep:")
    out.seek(0, io.SEEK_END)
    assert make_agent().download(server.url + "/cut", out, max_bytes=1000) == 100
    assert out.getvalue() == b"keep:" + BODY  # no duplicated half body
    assert server.app.count("cut") == 2


def test_no_retry_after_partial_body_into_non_seekable_destination(server: Server) -> None:
    dst = NonSeekable()
    with pytest.raises(TransferFailed, match=r"connection failed mid-transfer"):
        make_agent().download(server.url + "/cut", dst, max_bytes=1000)  # type: ignore[arg-type]
    assert server.app.count("cut") == 1


# --- PUT -------------------------------------------------------------------------


def test_put_sends_teaclave_headers_and_exact_length(server: Server) -> None:
    make_agent().upload(server.url + "/put/200", io.BytesIO(BODY), len(BODY))
    seen = server.app.seen[-1]
    assert seen.method == "PUT"
    assert seen.body == BODY
    assert seen.headers["Content-Type"] == "application/x-binary"
    assert seen.headers["Content-Length"] == "100"
    assert "Transfer-Encoding" not in seen.headers


def test_put_sends_only_declared_size(server: Server) -> None:
    make_agent().upload(server.url + "/put/200", io.BytesIO(BODY + b"extra"), len(BODY))
    assert server.app.seen[-1].body == BODY


@pytest.mark.parametrize("status", [201, 204, 307, 403, 409, 500])
def test_rejects_put_reply_other_than_200(server: Server, status: int) -> None:
    with pytest.raises(TransferFailed, match=rf"HTTP {status}; exactly 200 is required"):
        make_agent().upload(server.url + f"/put/{status}", io.BytesIO(b"x"), 1)


def test_put_retries_503_with_seekable_source(server: Server) -> None:
    make_agent().upload(server.url + "/flakyput", io.BytesIO(BODY), len(BODY))
    assert server.app.count("flakyput") == 2
    assert [s.body for s in server.app.seen] == [BODY, BODY]


def test_put_does_not_retry_consumed_non_seekable_source(server: Server) -> None:
    src = NonSeekable(BODY)
    with pytest.raises(TransferFailed, match=r"HTTP 503"):
        make_agent().upload(server.url + "/flakyput", src, len(BODY))  # type: ignore[arg-type]
    assert server.app.count("flakyput") == 1


def test_put_with_short_source_fails(server: Server) -> None:
    with pytest.raises(TransferFailed, match=r"source ended after 3 of 10 bytes"):
        make_agent().upload(server.url + "/put/200", io.BytesIO(b"abc"), 10)


def test_put_to_private_address_refused_without_connecting(server: Server) -> None:
    resolver = Resolver({"rebind.test": ["127.0.0.1"]})
    with pytest.raises(PolicyViolation, match=r"127.0.0.1 is loopback and not allowed"):
        make_agent(UrlPolicy(), resolver).upload(
            f"http://rebind.test:{server.port}/put/200", io.BytesIO(b"x"), 1
        )
    assert server.app.count("put") == 0


def test_put_over_upload_cap_refused(server: Server) -> None:
    limits = Limits(**{**LIMITS.__dict__, "max_upload_bytes": 10})
    with pytest.raises(TooLarge, match=r"11 bytes exceed the upload cap of 10 bytes"):
        make_agent(limits=limits).upload(server.url + "/put/200", io.BytesIO(b"x" * 11), 11)
    assert server.app.count("put") == 0


def test_error_messages_redact_presigned_query(server: Server) -> None:
    with pytest.raises(TransferFailed) as info:
        get(make_agent(), server.url + "/status/403?X-Amz-Signature=TOPSECRET")
    assert "TOPSECRET" not in str(info.value)
    assert "/status/403?<redacted>" in str(info.value)


# --- TLS: the pinned connection still verifies the certificate for the name ------


def make_pki(tmp: Path, dns_name: str) -> tuple[ssl.SSLContext, ssl.SSLContext, list[str]]:
    """A CA and a leaf for ``dns_name``: (server context, client context, SNI seen)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_file = tmp / f"{dns_name}.pem"
    key_file = tmp / f"{dns_name}.key"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    sni: list[str] = []
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert_file, key_file)
    server_ctx.sni_callback = lambda _s, name, _c: sni.append(name)
    client_ctx = ssl.create_default_context(
        cadata=ca.public_bytes(serialization.Encoding.PEM).decode()
    )
    return server_ctx, client_ctx, sni


def test_https_pins_address_and_verifies_certificate_for_name(tmp_path: Path) -> None:
    server_ctx, client_ctx, sni = make_pki(tmp_path, "files.test")
    for srv in _serve(server_ctx):
        resolver = Resolver({"files.test": ["127.0.0.1"]})
        agent = make_agent(resolver=resolver, ssl_context=client_ctx)
        assert get(agent, f"https://files.test:{srv.port}/file") == BODY
        assert sni == ["files.test"]
        assert srv.app.seen[-1].headers["Host"] == f"files.test:{srv.port}"


def test_https_rejects_certificate_for_another_name(tmp_path: Path) -> None:
    server_ctx, client_ctx, _ = make_pki(tmp_path, "other.test")
    for srv in _serve(server_ctx):
        resolver = Resolver({"files.test": ["127.0.0.1"]})
        agent = make_agent(resolver=resolver, ssl_context=client_ctx)
        with pytest.raises(TransferFailed, match=r"TLS failure"):
            get(agent, f"https://files.test:{srv.port}/file")
        assert resolver.asked == ["files.test"]  # a TLS failure is not retried


def test_https_rejects_redirect_down_to_http(tmp_path: Path, server: Server) -> None:
    server_ctx, client_ctx, _ = make_pki(tmp_path, "files.test")
    for srv in _serve(server_ctx):
        agent = make_agent(resolver=Resolver({"files.test": ["127.0.0.1"]}), ssl_context=client_ctx)
        to = quote(server.url + "/file", safe="")
        with pytest.raises(PolicyViolation, match=r"redirect from https to http refused"):
            get(agent, f"https://files.test:{srv.port}/redirect/302?to={to}")
        assert server.app.count("file") == 0
