"""Blob store: presigned URL signing and the HTTP(S) server on 127.0.0.1."""

from __future__ import annotations

import datetime
import http.client
import io
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import confide.services.blobstore as blobstore
from confide.config import Limits
from confide.execution.file_agent import FileAgent, PolicyViolation, TransferFailed, UrlPolicy
from confide.services.blobstore import (
    BlobStore,
    InvalidObjectName,
    SignatureExpired,
    SignatureInvalid,
    presign_url,
    validate_object_name,
    verify_presigned,
)

KEY = bytes(range(32))
NOW = 1_700_000_000
LIMITS = Limits(
    max_blob_bytes=1000, blob_read_timeout_s=0.5, max_blob_name_chars=64, max_url_chars=400
)


def test_public_surface_is_pinned() -> None:
    assert blobstore.__all__ == sorted(blobstore.__all__)
    assert blobstore.__all__ == [
        "BlobStore",
        "BlobStoreError",
        "InvalidObjectName",
        "SignatureExpired",
        "SignatureInvalid",
        "presign_url",
        "validate_object_name",
        "verify_presigned",
    ]


# --- signing (pure) --------------------------------------------------------------


def parts(url: str) -> tuple[str, str, str]:
    split = urlsplit(url)
    q = dict(p.split("=", 1) for p in split.query.split("&"))
    return split.path.removeprefix("/blobs/"), q["expires"], q["sig"]


def signed(name: str = "in/train.enc", method: str = "GET", expires: int = NOW + 60) -> str:
    return presign_url("http://h:1", KEY, name, method, expires, max_name_chars=64)


def test_presigned_url_format_and_verification() -> None:
    url = signed()
    assert url.startswith(f"http://h:1/blobs/in/train.enc?expires={NOW + 60}&sig=")
    name, expires, sig = parts(url)
    assert len(sig) == 64
    verify_presigned(KEY, "GET", name, expires, sig, now=NOW)
    verify_presigned(KEY, "GET", name, expires, sig, now=NOW + 60)  # inclusive


def test_rejects_expired_signature() -> None:
    name, expires, sig = parts(signed())
    with pytest.raises(SignatureExpired, match=rf"presigned URL expired at {NOW + 60}"):
        verify_presigned(KEY, "GET", name, expires, sig, now=NOW + 61)


def test_rejects_forged_signature_every_position() -> None:
    name, expires, sig = parts(signed())
    for i in range(len(sig)):
        flipped = sig[:i] + ("0" if sig[i] != "0" else "1") + sig[i + 1 :]
        with pytest.raises(SignatureInvalid, match=r"signature does not verify"):
            verify_presigned(KEY, "GET", name, expires, flipped, now=NOW)


def test_rejects_signature_for_other_method_name_expiry_or_key() -> None:
    name, expires, sig = parts(signed())
    cases = [
        (KEY, "PUT", name, expires),
        (KEY, "GET", "in/train.enc2", expires),
        (KEY, "GET", name, str(int(expires) + 3600)),
        (bytes(32), "GET", name, expires),
    ]
    for key, method, n, e in cases:
        with pytest.raises(SignatureInvalid, match=r"signature does not verify"):
            verify_presigned(key, method, n, e, sig, now=NOW)


@pytest.mark.parametrize("name", ["caf\u00e9", "a\x00b"])
def test_verify_rejects_names_that_cannot_be_signed(name: str) -> None:
    with pytest.raises(SignatureInvalid, match=r"object name cannot have been signed"):
        verify_presigned(KEY, "GET", name, "1", "0" * 64, now=NOW)


def test_storage_failure_is_a_clear_500(store: BlobStore, tmp_path: Path) -> None:
    (tmp_path / "data" / "blobs" / ".tmp").rmdir()
    assert put(store, "x.enc", b"data") == (500, b"storage error\n")
    assert get(store, "x.enc")[0] == 404


@pytest.mark.parametrize("expires", ["", "01", "-1", "1e9", " 1", "1" * 13, "0x10"])
def test_rejects_malformed_expiry(expires: str) -> None:
    with pytest.raises(SignatureInvalid, match=r"malformed expires parameter"):
        verify_presigned(KEY, "GET", "a", expires, "0" * 64, now=NOW)


@pytest.mark.parametrize("sig", ["", "0" * 63, "0" * 65, "A" * 64, "g" * 64])
def test_rejects_malformed_sig(sig: str) -> None:
    with pytest.raises(SignatureInvalid, match=r"malformed sig parameter"):
        verify_presigned(KEY, "GET", "a", "1", sig, now=NOW)


def test_rejects_unsigned_methods_and_short_keys() -> None:
    with pytest.raises(SignatureInvalid, match=r"method 'DELETE' cannot be presigned"):
        verify_presigned(KEY, "DELETE", "a", "1", "0" * 64, now=NOW)
    with pytest.raises(ValueError, match=r"method must be one of"):
        signed(method="POST")
    with pytest.raises(ValueError, match=r"at least 32 bytes"):
        presign_url("http://h", b"short", "a", "GET", NOW, max_name_chars=64)
    with pytest.raises(ValueError, match=r"at least 32 bytes"):
        BlobStore("/nonexistent", b"short", limits=LIMITS)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        ("../secret", "segment '..'"),
        ("a/../../etc/passwd", "segment '..'"),
        ("./a", "segment '.'"),
        (".hidden", "starts with a dot"),
        ("a//b", "segment ''"),
        ("/abs", "segment ''"),
        ("a/", "segment ''"),
        ("a%2F..", "outside"),
        ("a\\b", "outside"),
        ("caf\u00e9", "outside"),
        ("a\x00b", "outside"),
        ("-rf", "dash"),
        ("a/b/c/d/e/f/g/h/i", "more than 8 segments"),
        ("x" * 65, "65 chars, more than 64"),
    ],
)
def test_rejects_bad_object_names(name: str, reason: str) -> None:
    with pytest.raises(InvalidObjectName, match=reason.replace(".", r"\.")):
        validate_object_name(name, 64)
    with pytest.raises(InvalidObjectName):
        presign_url("http://h", KEY, name, "PUT", NOW, max_name_chars=64)


def test_accepts_name_at_cap() -> None:
    validate_object_name("x" * 64, 64)
    validate_object_name("user-1/task_2/out.v1.enc", 64)


# --- server ----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[BlobStore]:
    s = BlobStore(tmp_path / "data", KEY, limits=LIMITS, clock=clock)
    s.start()
    try:
        yield s
    finally:
        s.stop()


def request(
    store: BlobStore,
    method: str,
    target: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", store.port, timeout=5)
    try:
        hdrs = dict(headers or {})
        if body is not None and "Content-Length" not in hdrs:
            hdrs["Content-Length"] = str(len(body))
        conn.putrequest(method, target, skip_accept_encoding=True)
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def target_of(url: str) -> str:
    split = urlsplit(url)
    return f"{split.path}?{split.query}"


def put(store: BlobStore, name: str, body: bytes) -> tuple[int, bytes]:
    return request(store, "PUT", target_of(store.presign(name, "PUT", NOW + 60)), body)


def get(store: BlobStore, name: str) -> tuple[int, bytes]:
    return request(store, "GET", target_of(store.presign(name, "GET", NOW + 60)))


def test_put_then_get_round_trip(store: BlobStore, tmp_path: Path) -> None:
    assert put(store, "u1/in.enc", b"\x00ciphertext\xff") == (200, b"stored\n")
    assert get(store, "u1/in.enc") == (200, b"\x00ciphertext\xff")
    assert (tmp_path / "data" / "blobs" / "u1" / "in.enc").read_bytes() == b"\x00ciphertext\xff"
    assert store.base_url == f"http://127.0.0.1:{store.port}"


def test_get_missing_object_is_404(store: BlobStore) -> None:
    assert get(store, "nope.enc") == (404, b"no such object\n")


def test_rejects_forged_signature(store: BlobStore) -> None:
    url = store.presign("a.enc", "PUT", NOW + 60)
    forged = url[:-1] + ("0" if url[-1] != "0" else "1")
    status, body = request(store, "PUT", target_of(forged), b"evil")
    assert (status, body) == (403, b"signature invalid: signature does not verify\n")
    assert get(store, "a.enc")[0] == 404


def test_rejects_missing_or_duplicate_parameters(store: BlobStore) -> None:
    url = target_of(store.presign("a.enc", "GET", NOW + 60))
    for target in ("/blobs/a.enc", url + "&sig=" + "0" * 64, url + "&x=1"):
        status, body = request(store, "GET", target)
        assert status == 403
        assert body.startswith(b"signature invalid:")


def test_rejects_expired_url(store: BlobStore, clock: Clock) -> None:
    url = store.presign("late.enc", "PUT", NOW + 10)
    clock.now = NOW + 11
    status, body = request(store, "PUT", target_of(url), b"data")
    assert (status, body) == (
        403,
        f"signature expired: presigned URL expired at {NOW + 10}\n".encode(),
    )


def test_rejects_get_url_used_for_put(store: BlobStore) -> None:
    url = store.presign("a.enc", "GET", NOW + 60)
    status, body = request(store, "PUT", target_of(url), b"data")
    assert (status, body) == (403, b"signature invalid: signature does not verify\n")


def test_rejects_unsupported_methods(store: BlobStore) -> None:
    url = target_of(store.presign("a.enc", "GET", NOW + 60))
    for method in ("DELETE", "POST", "PATCH"):
        assert request(store, method, url) == (405, b"method not allowed\n")


def test_refuses_overwrite(store: BlobStore) -> None:
    assert put(store, "out.enc", b"first")[0] == 200
    assert put(store, "out.enc", b"second") == (409, b"object exists; objects are written once\n")
    assert get(store, "out.enc") == (200, b"first")


def test_object_and_directory_names_cannot_collide(store: BlobStore) -> None:
    assert put(store, "a", b"file")[0] == 200
    status, _ = put(store, "a/b", b"under a file")
    assert status == 409


@pytest.mark.parametrize(
    "path",
    ["/blobs/../secret", "/blobs/a/../../secret", "/blobs/%2e%2e/secret", "/blobs/.tmp/x"],
)
def test_rejects_traversal_in_request_path(store: BlobStore, path: str) -> None:
    # the signature would not match either; the name check answers first
    status, body = request(store, "GET", f"{path}?expires={NOW + 60}&sig={'0' * 64}")
    assert status == 400
    assert body.startswith(b"invalid object name:")


def test_rejects_non_blob_path(store: BlobStore) -> None:
    assert request(store, "GET", "/etc/passwd")[0] == 404


def test_rejects_overlong_request_target(store: BlobStore) -> None:
    assert request(store, "GET", "/blobs/a?" + "x" * 400) == (414, b"request target too long\n")


def test_upload_at_cap_accepted_and_cap_plus_one_refused(store: BlobStore) -> None:
    assert put(store, "max.enc", b"x" * 1000)[0] == 200
    status, body = put(store, "over.enc", b"x" * 1001)
    assert (status, body) == (413, b"object of 1001 bytes exceeds the cap of 1000 bytes\n")
    assert get(store, "over.enc")[0] == 404


def test_refuses_oversize_declared_length_without_reading_body(store: BlobStore) -> None:
    target = target_of(store.presign("huge.enc", "PUT", NOW + 60))
    reply = request(store, "PUT", target, b"", headers={"Content-Length": str(10**12)})
    assert reply == (413, f"object of {10**12} bytes exceeds the cap of 1000 bytes\n".encode())


def test_requires_content_length(store: BlobStore) -> None:
    target = target_of(store.presign("c.enc", "PUT", NOW + 60))
    assert request(store, "PUT", target) == (
        411,
        b"exactly one Content-Length header is required\n",
    )
    status, body = request(
        store, "PUT", target, b"4\r\ndata\r\n0\r\n\r\n", headers={"Transfer-Encoding": "chunked"}
    )
    assert (status, body) == (411, b"chunked uploads are not accepted; send Content-Length\n")
    status, _ = request(store, "PUT", target, b"", headers={"Content-Length": "-1"})
    assert status == 400


def raw_put_start(store: BlobStore, name: str, length: int, first: bytes) -> socket.socket:
    target = target_of(store.presign(name, "PUT", NOW + 60))
    sock = socket.create_connection(("127.0.0.1", store.port), timeout=5)
    head = f"PUT {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n"
    sock.sendall(head.encode() + first)
    return sock


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    sock.close()
    return data


def leftovers(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "data" / "blobs" / ".tmp").iterdir())


def test_short_body_stores_nothing(store: BlobStore, tmp_path: Path) -> None:
    sock = raw_put_start(store, "short.enc", 100, b"x" * 10)
    sock.shutdown(socket.SHUT_WR)
    reply = read_all(sock)
    assert reply.startswith(b"HTTP/1.1 400")
    assert b"body ended after 10 of 100 bytes" in reply
    assert get(store, "short.enc")[0] == 404
    assert leftovers(tmp_path) == []


def test_stalled_upload_times_out(store: BlobStore, tmp_path: Path) -> None:
    sock = raw_put_start(store, "stall.enc", 100, b"x" * 10)
    started = time.monotonic()
    reply = read_all(sock)
    assert reply.startswith(b"HTTP/1.1 408")
    assert time.monotonic() - started < 3
    assert get(store, "stall.enc")[0] == 404
    assert leftovers(tmp_path) == []


def test_concurrent_uploads_to_one_name_have_exactly_one_winner(store: BlobStore) -> None:
    urls = [target_of(store.presign("race.enc", "PUT", NOW + 60)) for _ in range(8)]
    bodies = [bytes([i]) * 900 for i in range(8)]
    results: list[int] = [0] * 8
    barrier = threading.Barrier(8)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = request(store, "PUT", urls[i], bodies[i])[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] + [409] * 7
    winner = results.index(200)
    assert get(store, "race.enc") == (200, bodies[winner])


def test_concurrent_uploads_to_distinct_names_all_succeed(store: BlobStore) -> None:
    results: dict[int, int] = {}

    def run(i: int) -> None:
        results[i] = put(store, f"many/{i}.enc", bytes([i]) * 500)[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == dict.fromkeys(range(16), 200)
    for i in range(16):
        assert get(store, f"many/{i}.enc") == (200, bytes([i]) * 500)


def test_connection_limit_drops_extra_connections(tmp_path: Path, clock: Clock) -> None:
    limits = Limits(**{**LIMITS.__dict__, "max_blob_connections": 2, "blob_read_timeout_s": 5.0})
    s = BlobStore(tmp_path / "d", KEY, limits=limits, clock=clock)
    s.start()
    try:
        idle = [socket.create_connection(("127.0.0.1", s.port), timeout=5) for _ in range(2)]
        time.sleep(0.2)
        extra = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        extra.sendall(b"GET /blobs/a HTTP/1.1\r\n\r\n")
        assert extra.recv(100) == b""  # closed without an answer
        extra.close()
        for sock in idle:
            sock.close()
        time.sleep(0.2)
        assert get(s, "a")[0] == 404  # slots are free again
    finally:
        s.stop()


def test_logs_never_contain_signatures(store: BlobStore, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="confide.services.blobstore")
    url = store.presign("logged.enc", "PUT", NOW + 60)
    sig = parts(url)[2]
    put(store, "logged.enc", b"x")
    bad = socket.create_connection(("127.0.0.1", store.port), timeout=5)
    bad.sendall(f"GET /blobs/a?expires=1&sig={sig} HTTP/1.1 junk\r\n\r\n".encode())
    assert b"400" in read_all(bad)
    assert caplog.records
    assert all(sig not in r.getMessage() for r in caplog.records)


def test_stop_is_idempotent_and_port_requires_start(tmp_path: Path) -> None:
    s = BlobStore(tmp_path, KEY, limits=LIMITS)
    with pytest.raises(RuntimeError, match=r"not started"):
        _ = s.port
    s.start()
    s.stop()
    s.stop()


# --- with the file agent ---------------------------------------------------------


def test_file_agent_round_trip_under_embedded_policy(store: BlobStore, tmp_path: Path) -> None:
    agent = FileAgent(UrlPolicy.embedded(blob_store_port=store.port), LIMITS)
    payload = bytes(range(256)) * 3
    agent.upload(store.presign("task/out.enc", "PUT", NOW + 60), io.BytesIO(payload), 768)
    out = io.BytesIO()
    n = agent.download(store.presign("task/out.enc", "GET", NOW + 60), out, max_bytes=1000)
    assert (n, out.getvalue()) == (768, payload)
    with pytest.raises(TransferFailed, match=r"HTTP 409; exactly 200 is required"):
        agent.upload(store.presign("task/out.enc", "PUT", NOW + 60), io.BytesIO(b"x"), 1)
    with pytest.raises(PolicyViolation, match=r"loopback port 1 is not allowed"):
        agent.download("http://127.0.0.1:1/", io.BytesIO(), max_bytes=10)


def make_tls(tmp: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp / "c.pem").write_bytes(pem)
    (tmp / "k.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp / "c.pem", tmp / "k.pem")
    client = ssl.create_default_context(cadata=pem.decode())
    return server, client


def test_tls_blob_store_with_pinned_file_agent(tmp_path: Path, clock: Clock) -> None:
    server_ctx, client_ctx = make_tls(tmp_path, "blobs.test")
    s = BlobStore(
        tmp_path / "d",
        KEY,
        limits=LIMITS,
        ssl_context=server_ctx,
        clock=clock,
        public_host="blobs.test",
    )
    s.start()
    try:
        assert s.base_url == f"https://blobs.test:{s.port}"
        agent = FileAgent(
            UrlPolicy.embedded(blob_store_port=s.port),
            LIMITS,
            resolver=lambda host, port: ["127.0.0.1"] if host == "blobs.test" else [],
            ssl_context=client_ctx,
        )
        agent.upload(s.presign("t.enc", "PUT", NOW + 60), io.BytesIO(b"secret!"), 7)
        out = io.BytesIO()
        agent.download(s.presign("t.enc", "GET", NOW + 60), out, max_bytes=100)
        assert out.getvalue() == b"secret!"
        # a plain-HTTP client is not served
        with pytest.raises(TransferFailed):
            FileAgent(UrlPolicy(allow_loopback=True), LIMITS, sleep=lambda _: None).download(
                f"http://127.0.0.1:{s.port}/blobs/t.enc", io.BytesIO(), max_bytes=100
            )
    finally:
        s.stop()


def test_a_read_write_url_serves_get_and_put_but_never_overwrites(store: BlobStore) -> None:
    def target(method: str) -> str:
        url = urlsplit(store.presign("rw/obj.bin", method, NOW + 60))
        return f"{url.path}?{url.query}"

    rw = target("RW")
    assert request(store, "GET", rw)[0] == 404
    assert request(store, "PUT", rw, b"once", {"Content-Length": "4"})[0] == 200
    assert request(store, "GET", rw) == (200, b"once")
    assert request(store, "PUT", rw, b"twice", {"Content-Length": "5"})[0] == 409
    assert request(store, "PUT", target("GET"), b"x", {"Content-Length": "1"})[0] == 403
