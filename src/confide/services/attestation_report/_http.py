"""HTTP(S) endpoint and client of the attestation report service.

Wire API (compatible with Teaclave's DCAP reference server, ``dcap/src/main.rs``):

``POST /sgx/dev/attestation/v4/report`` (also ``/v3/report``, which Teaclave's
attestation client uses), ``Content-Type: application/json``, body
``{"isvEnclaveQuote": "<base64 quote>"}`` of at most ``max_report_request_bytes``.

* 200: body = the report JSON (the exact signed bytes); headers
  ``X-DCAPReport-Signature`` and ``X-IASReport-Signature`` (base64 RSA
  PKCS#1 v1.5 SHA-256 signature) and ``X-DCAPReport-Signing-Certificate`` and
  ``X-IASReport-Signing-Certificate`` (percent-encoded PEM of the signing
  chain, signing certificate first). Teaclave's client reads the ``DCAP``
  names for ECDSA attestation and the ``IAS`` names for EPID; both are sent.
* 400: malformed request or a quote the verifier refused; 404 unknown path;
  411 no Content-Length; 413 body too large; 500 internal error.

Each response closes the connection (as Teaclave's server does).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import http.client
import json
import logging
import os
import ssl
import tempfile
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from confide.attestation import (
    AttestationError,
    EndorsedReport,
    RaTlsError,
    ReportServiceError,
    VerifyQuote,
)
from confide.config import Limits

from ._authority import ReportAuthority, SealerLike

__all__ = [
    "REPORT_PATHS",
    "ReportResponse",
    "ReportService",
    "make_report_server",
    "request_report",
    "run_attestation_service",
]

_log = logging.getLogger(__name__)

REPORT_PATHS = ("/sgx/dev/attestation/v4/report", "/sgx/dev/attestation/v3/report")
_SIGNATURE_HEADERS = ("X-DCAPReport-Signature", "X-IASReport-Signature")
_CERT_HEADERS = ("X-DCAPReport-Signing-Certificate", "X-IASReport-Signing-Certificate")


@dataclass(frozen=True)
class ReportResponse:
    """An HTTP answer: status, body and extra headers."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


class ReportService:
    """Request handling without sockets: body bytes in, :class:`ReportResponse` out."""

    def __init__(
        self,
        authority: ReportAuthority,
        verify_quote: VerifyQuote,
        clock: Callable[[], dt.datetime],
        limits: Limits | None = None,
    ) -> None:
        """Create the service.

        Args:
            authority: root and signing keys.
            verify_quote: the quote verifier (raises when a quote does not verify).
            clock: returns the current time (the API edge: the only place time is read).
            limits: size caps.
        """
        self._authority = authority
        self._verify_quote = verify_quote
        self._clock = clock
        self._limits = limits if limits is not None else Limits()
        self._cert_header = urllib.parse.quote(
            authority.signing_chain_pem().decode("ascii"), safe=""
        )

    def handle(self, body: bytes) -> ReportResponse:
        """Answer one POST body (already bounded by the transport)."""
        if len(body) > self._limits.max_report_request_bytes:
            return ReportResponse(413)
        try:
            request = json.loads(body)
            quote_b64 = request["isvEnclaveQuote"] if isinstance(request, dict) else None
            if not isinstance(quote_b64, str):
                return ReportResponse(400, b"isvEnclaveQuote missing")
            quote = base64.b64decode(quote_b64, validate=True)
        except (ValueError, KeyError, binascii.Error, UnicodeDecodeError):
            return ReportResponse(400, b"malformed request")
        now = self._clock()
        try:
            verdict = self._verify_quote(quote, now)
            endorsed = self._authority.endorse(quote, verdict, now)
        except RaTlsError as e:
            _log.info("report refused: %s", e)
            return ReportResponse(400, e.reason.encode())
        except AttestationError:  # the verifier refused the quote
            _log.info("quote refused by verifier", exc_info=True)
            return ReportResponse(400, b"quote verification failed")
        signature = base64.b64encode(endorsed.signature).decode("ascii")
        headers = {"Content-Type": "application/json"}
        headers.update({name: signature for name in _SIGNATURE_HEADERS})
        headers.update({name: self._cert_header for name in _CERT_HEADERS})
        return ReportResponse(200, endorsed.report, headers)


def _handler_class(service: ReportService, limits: Limits) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "confide-attestation"
        sys_version = ""

        def _send(self, response: ReportResponse) -> None:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(response.body)
            self.close_connection = True

        def do_POST(self) -> None:
            if self.path not in REPORT_PATHS:
                self._send(ReportResponse(404))
                return
            length_text = self.headers.get("Content-Length")
            if length_text is None or not length_text.isdigit():
                self._send(ReportResponse(411))
                return
            length = int(length_text)
            if length > limits.max_report_request_bytes:
                self._send(ReportResponse(413))
                return
            try:
                response = service.handle(self.rfile.read(length))
            except Exception:  # noqa: BLE001 - a bug must answer 500, not drop the connection
                _log.exception("report service failed")
                response = ReportResponse(500, b"internal error")
            self._send(response)

        def do_GET(self) -> None:
            self._send(ReportResponse(405, headers={"Allow": "POST"}))

        def log_message(self, format: str, *args: object) -> None:
            _log.debug("%s " + format, self.address_string(), *args)

    return Handler


def make_report_server(
    service: ReportService,
    host: str,
    port: int,
    *,
    tls_context: ssl.SSLContext | None = None,
    limits: Limits | None = None,
) -> ThreadingHTTPServer:
    """A threading HTTP(S) server for ``service``; call ``serve_forever()`` on it.

    Args:
        service: the request handler core.
        host: listen address.
        port: listen port (0 picks a free one; read ``server.server_address``).
        tls_context: a server-side context for HTTPS (e.g. with the signing
            certificate, as Teaclave's reference server does); ``None`` for HTTP.
        limits: size caps.
    """
    limits = limits if limits is not None else Limits()
    server = ThreadingHTTPServer((host, port), _handler_class(service, limits))
    server.daemon_threads = True
    if tls_context is not None:
        server.socket = tls_context.wrap_socket(server.socket, server_side=True)
    return server


def request_report(
    host: str,
    port: int,
    quote: bytes,
    *,
    tls_context: ssl.SSLContext | None = None,
    timeout: float = 10.0,
    limits: Limits | None = None,
) -> EndorsedReport:
    """Ask a report service to endorse ``quote`` (the node side of the protocol).

    The answer is NOT verified here; pass it to ``verify_endorsement`` (or rely
    on ``build_attested_certificate``'s consistency check) before use.

    Raises:
        ReportServiceError: ``service-refused`` (non-200), ``service-response-invalid``.
        OSError: network failure.
    """
    limits = limits if limits is not None else Limits()
    body = json.dumps({"isvEnclaveQuote": base64.b64encode(quote).decode("ascii")}).encode()
    connection: http.client.HTTPConnection = (
        http.client.HTTPSConnection(host, port, timeout=timeout, context=tls_context)
        if tls_context is not None
        else http.client.HTTPConnection(host, port, timeout=timeout)
    )
    try:
        connection.request(
            "POST", REPORT_PATHS[0], body=body, headers={"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        report = response.read(limits.max_report_bytes + 1)
        signature_b64 = response.getheader(_SIGNATURE_HEADERS[0])
        cert_header = response.getheader(_CERT_HEADERS[0])
        status = response.status
    finally:
        connection.close()
    if status != 200:
        raise ReportServiceError("service-refused", f"report service answered {status}")
    if len(report) > limits.max_report_bytes or signature_b64 is None or cert_header is None:
        raise ReportServiceError("service-response-invalid", "incomplete report response")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        pem = urllib.parse.unquote(cert_header).encode("ascii")
        certs = tuple(
            c.public_bytes(serialization.Encoding.DER) for c in x509.load_pem_x509_certificates(pem)
        )
    except (ValueError, binascii.Error, UnicodeEncodeError) as e:
        raise ReportServiceError("service-response-invalid", "bad signature headers") from e
    return EndorsedReport(report=report, signature=signature, certs=certs)


def server_tls_context(authority: ReportAuthority) -> ssl.SSLContext:
    """HTTPS with the signing certificate, like Teaclave's reference server.

    ``ssl`` only loads keys from files: the key is written to a private
    temporary directory (mode 0700) and removed right after loading.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    key_pem = authority.signing_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with tempfile.TemporaryDirectory(prefix="confide-as-") as private:
        cert_path = Path(private) / "cert.pem"
        key_path = Path(private) / "key.pem"
        cert_path.write_bytes(authority.signing_chain_pem())
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem)
        context.load_cert_chain(cert_path, key_path)
    return context


def run_attestation_service(
    *,
    state_dir: Path,
    sealer: SealerLike,
    verify_quote: VerifyQuote,
    host: str = "127.0.0.1",
    port: int = 8443,
    tls: bool = True,
    dns_names: Sequence[str] = ("localhost",),
    limits: Limits | None = None,
) -> None:
    """Entry point behind ``confide attestation-service``: load keys and serve forever.

    Args:
        state_dir: where the root/signing certificates and sealed keys live.
        sealer: seals the private keys at rest.
        verify_quote: the quote verifier.
        host: listen address.
        port: listen port.
        tls: serve HTTPS with the signing certificate (HTTP when False).
        dns_names: SAN DNS names of the signing certificate (for HTTPS clients).
        limits: size caps.
    """
    authority = ReportAuthority.load_or_create(
        state_dir, sealer, dt.datetime.now(dt.UTC), dns_names=dns_names
    )
    service = ReportService(authority, verify_quote, lambda: dt.datetime.now(dt.UTC), limits)
    server = make_report_server(
        service,
        host,
        port,
        tls_context=server_tls_context(authority) if tls else None,
        limits=limits,
    )
    _log.warning(
        "attestation report service on %s:%d; AS root certificate: %s",
        host,
        server.server_address[1],
        state_dir / "as_root_cert.pem",
    )
    with server:
        server.serve_forever()


def client_tls_context(root_pem: bytes) -> ssl.SSLContext:
    """HTTPS to a report service whose signing certificate chains to ``root_pem``
    (its AS root): the chain is checked, the host name is not (the service's
    certificate names the host it was made for, not the address nodes dial)."""
    context = ssl.create_default_context(cadata=root_pem.decode("ascii"))
    context.check_hostname = False
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
