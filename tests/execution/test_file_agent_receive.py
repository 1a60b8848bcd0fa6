"""The fast GET body path: recv_into a lent buffer, framing checked, caps and drops handled.

Replies are scripted byte by byte (``_scripted``) so that lying, repeated or
malformed framing and connections cut mid-body can be sent on purpose.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from _scripted import reply, scripted
from test_file_agent_http import LIMITS, Resolver, _serve, get, make_agent, make_pki

from confide.config import Limits
from confide.execution.file_agent import BufferedDestination, TooLarge, TransferFailed

BIG = os.urandom(5 * (1 << 20) + 17)  # several receive buffers, not a multiple of any


class LentSink:
    """A BufferedDestination recording how it was fed (a small lent buffer)."""

    def __init__(self, size: int = 4096) -> None:
        self.data = bytearray()
        self.buf = memoryview(bytearray(size))
        self.fill = 0
        self.lent = 0
        self.copied = 0
        self.rewinds = 0

    def get_buffer(self) -> memoryview:
        return self.buf[self.fill :]

    def buffer_updated(self, n: int) -> None:
        self.lent += n
        self.fill += n
        if self.fill == len(self.buf):
            self.data += self.buf
            self.fill = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.copied += len(data)
        self.data += data
        return len(data)

    def value(self) -> bytes:
        return bytes(self.data + self.buf[: self.fill])

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return len(self.value())

    def seek(self, offset: int, whence: int = 0) -> int:
        assert (offset, whence) == (0, 0)
        self.rewinds += 1
        self.data, self.fill = bytearray(), 0
        return 0

    def truncate(self, size: int | None = None) -> int:
        return 0


def test_lent_sink_is_a_buffered_destination() -> None:
    assert isinstance(LentSink(), BufferedDestination)
    assert not isinstance(io.BytesIO(), BufferedDestination)


def test_large_body_goes_into_the_lent_buffer_without_copies() -> None:
    with scripted(lambda _: [reply(BIG)]) as srv:
        sink = LentSink()
        n = make_agent().download(srv.url + "/big", sink, max_bytes=len(BIG))
    assert n == len(BIG)
    assert sink.value() == BIG
    assert (sink.lent, sink.copied) == (len(BIG), 0)


def test_large_body_into_a_plain_file(tmp_path: Path) -> None:
    with scripted(lambda _: [reply(BIG)]) as srv, open(tmp_path / "out", "wb") as out:
        assert make_agent().download(srv.url + "/big", out, max_bytes=len(BIG)) == len(BIG)
    assert (tmp_path / "out").read_bytes() == BIG


def test_request_is_pinned_get_with_identity_encoding_and_connection_close() -> None:
    with scripted(lambda _: [reply(b"ok")]) as srv:
        resolver = Resolver({"files.test": ["127.0.0.1"]})
        get(make_agent(resolver=resolver), f"http://files.test:{srv.port}/x?q=1")
    head = srv.hits[0].decode()
    assert head.startswith("GET /x?q=1 HTTP/1.1\r\n")
    assert f"Host: files.test:{srv.port}\r\n" in head
    assert "Accept-Encoding: identity\r\n" in head
    assert "Connection: close\r\n" in head


def test_short_body_is_a_dropped_connection_retried_then_refused() -> None:
    with scripted(lambda _: [reply(b"x" * 50, length=100)]) as srv:
        with pytest.raises(TransferFailed, match=r"body ended after 50 of 100 bytes"):
            get(make_agent(), srv.url + "/short")
    assert len(srv.hits) == LIMITS.file_max_attempts


def test_connection_dropped_mid_body_rewinds_the_sink_and_retries() -> None:
    def script(hit: int) -> list[bytes | None]:
        return [reply(BIG)[: 1 << 20], None] if hit == 1 else [reply(BIG)]

    with scripted(script) as srv:
        sink = LentSink()
        assert make_agent().download(srv.url + "/cut", sink, max_bytes=len(BIG)) == len(BIG)
    assert sink.value() == BIG
    assert sink.rewinds == 2  # before each attempt, as for a seekable file


def test_body_longer_than_content_length_is_cut_at_the_declared_length() -> None:
    with scripted(lambda _: [reply(b"a" * 10 + b"EXTRA", length=10)]) as srv:
        assert get(make_agent(), srv.url + "/long") == b"a" * 10


def test_content_length_over_cap_refused_before_the_body() -> None:
    with scripted(lambda _: [reply(b"", length=1 << 30)]) as srv:
        sink = LentSink()
        with pytest.raises(TooLarge, match=r"Content-Length 1073741824 exceeds the cap of 99"):
            make_agent().download(srv.url + "/huge", sink, max_bytes=99)
    assert sink.value() == b""


@pytest.mark.parametrize("cap", [0, 99, 4096, 4097])
def test_body_without_length_never_reaches_the_sink_past_the_cap(cap: int) -> None:
    with scripted(lambda _: [reply(BIG, length=None), None]) as srv:
        sink = LentSink()
        with pytest.raises(TooLarge, match=rf"body exceeds the cap of {cap} bytes"):
            make_agent().download(srv.url + "/nocl", sink, max_bytes=cap)
    assert len(sink.value()) <= cap
    assert sink.lent <= cap


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (b"Content-Length: +10\r\n", "malformed Content-Length"),
        (b"Content-Length: 1e1\r\n", "malformed Content-Length"),
        (b"Content-Length: \xb9\r\n", "malformed Content-Length"),  # latin-1 superscript one
        (b"Content-Length: 10\r\nContent-Length: 10\r\n", "repeats the Content-Length header"),
        (b"Content-Length: 10\r\nContent-Length: 5\r\n", "repeats the Content-Length header"),
        (b"Content-Length: 10\r\nTransfer-Encoding: chunked\r\n", "both Content-Length and"),
        (b"Transfer-Encoding: gzip\r\n", "unsupported Transfer-Encoding"),
    ],
)
def test_rejects_ambiguous_or_malformed_framing(extra: bytes, reason: str) -> None:
    with scripted(lambda _: [reply(b"a" * 10, length=None, extra=extra)]) as srv:
        with pytest.raises(TransferFailed, match=reason):
            get(make_agent(), srv.url + "/framing")
    assert len(srv.hits) == 1  # a malformed reply is not retried


def _chunked(body: bytes, size: int = 1000) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size])
             for i in range(0, len(body), size)]  # fmt: skip
    return b"".join(parts) + b"0\r\n\r\n"


def test_chunked_body_is_decoded() -> None:
    body = os.urandom(10_000)
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    with scripted(lambda _: [head + _chunked(body)]) as srv:
        assert get(make_agent(), srv.url + "/chunked", max_bytes=10_000) == body


def test_chunked_body_over_cap_refused() -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    with scripted(lambda _: [head + _chunked(b"z" * 5000)]) as srv:
        out = io.BytesIO()
        with pytest.raises(TooLarge, match=r"body exceeds the cap of 4999 bytes"):
            make_agent().download(srv.url + "/chunked", out, max_bytes=4999)
    assert len(out.getvalue()) <= 4999


def test_truncated_chunked_body_is_a_dropped_connection() -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    with scripted(lambda _: [head + _chunked(b"z" * 5000)[:2000], None]) as srv:
        with pytest.raises(TransferFailed, match=r"connection failed mid-transfer"):
            get(make_agent(), srv.url + "/chunked", max_bytes=10_000)
    assert len(srv.hits) == LIMITS.file_max_attempts


def test_garbage_status_line_is_refused_without_retry() -> None:
    with scripted(lambda _: [b"SSH-2.0-OpenSSH_9.2\r\n\r\n", None]) as srv:
        with pytest.raises(TransferFailed, match=r"malformed HTTP reply"):
            get(make_agent(), srv.url + "/ssh")
    assert len(srv.hits) == 1


def test_closed_before_any_reply_is_retried() -> None:
    with scripted(lambda hit: [None] if hit == 1 else [reply(b"ok")]) as srv:
        assert get(make_agent(), srv.url + "/x") == b"ok"
    assert len(srv.hits) == 2


def test_large_body_over_tls(tmp_path: Path) -> None:
    server_ctx, client_ctx, sni = make_pki(tmp_path, "files.test")
    for srv in _serve(server_ctx):
        resolver = Resolver({"files.test": ["127.0.0.1"]})
        limits = Limits(**{**LIMITS.__dict__, "file_read_timeout_s": 5.0})
        agent = make_agent(resolver=resolver, ssl_context=client_ctx, limits=limits)
        sink = LentSink()
        n = agent.download(f"https://files.test:{srv.port}/bytes/3000000", sink, max_bytes=10**7)
        assert (n, sink.value()) == (3_000_000, b"a" * 3_000_000)
        assert sni == ["files.test"]
