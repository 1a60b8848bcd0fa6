"""http(s) transfers with address pinning, manual redirects and bounded retries.

DNS rebinding defence: the host name is resolved once per request (per hop and
per attempt) by the agent itself, *every* address returned is checked against
the policy, and the request is sent to the first address as an IP literal.
The original name travels in the ``Host`` header and, for https, is the TLS
``server_hostname``, which sets both the SNI and the name the certificate is
verified against. Nothing resolves the name again, so a resolver that answers
a public address to the check and a private one to the connect has nothing to
rebind. Connections are never kept alive, so a TLS connection verified for one
name is never reused for another name on the same address, and no proxy
variable is consulted.

GET runs on ``http.client`` over a socket connected here (``_receive``): the
body goes with ``recv_into`` straight into the destination's buffer (1 MiB),
which lets the worker decrypt while downloading. PUT runs on the bare
``httpx.HTTPTransport`` (``sni_hostname`` request extension, ``trust_env=False``);
both use one SSL context (the caller's, or httpx's certifi default).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import urljoin

import httpx

from confide.config import Limits

from ._errors import PolicyViolation, Timeout, TransferFailed
from ._policy import (
    HttpTarget,
    IPAddress,
    UrlPolicy,
    check_url_chars,
    check_url_text,
    parse_http_url,
)
from ._receive import (
    BufferedDestination,
    Pinned,
    Transient,
    WriteThrough,
    open_get,
    receive_body,
    tls_failure,
)
from ._stream import ShortSource, read_exactly

__all__ = ["HttpTransfers", "Resolver", "system_resolver"]

Resolver = Callable[[str, int], Sequence[str]]
"""Maps (host name, port) to the IP address strings to connect to."""

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_TRANSIENT_STATUS = frozenset({502, 503, 504})


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with ``getaddrinfo`` (TCP), in the system's preference order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class _Pinned:
    url: httpx.URL
    headers: dict[str, str]
    extensions: dict[str, object]
    get: Pinned


def _map_httpx_error(url: str, e: httpx.HTTPError) -> Exception:
    """Translate an httpx error into a (possibly transient) file agent error."""
    if isinstance(e, httpx.ConnectTimeout):
        return Transient(Timeout(url, "connecting timed out"))
    if isinstance(e, httpx.TimeoutException):
        return Timeout(url, f"no data within the socket timeout ({type(e).__name__})")
    if isinstance(e, httpx.ConnectError):
        if tls_failure(e):
            return TransferFailed(url, f"TLS failure: {e}")
        return Transient(TransferFailed(url, f"cannot connect: {e}"))
    if isinstance(e, (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)):
        return Transient(TransferFailed(url, f"connection failed mid-transfer: {e}"))
    return TransferFailed(url, f"HTTP transfer failed: {type(e).__name__}: {e}")


class HttpTransfers:
    """GET and PUT under a :class:`UrlPolicy` (see the module docstring)."""

    def __init__(
        self,
        policy: UrlPolicy,
        limits: Limits,
        *,
        resolver: Resolver,
        ssl_context: ssl.SSLContext | None,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
    ) -> None:
        self._policy = policy
        self._limits = limits
        self._resolver = resolver
        self._sleep = sleep
        self._clock = clock
        self._ssl = (
            ssl_context if ssl_context is not None else httpx.create_ssl_context(trust_env=False)
        )
        # The bare transport, not httpx.Client: no cookie jar shared between
        # transfers, no redirect handling (httpx would parse every Location
        # header), no auth or proxy logic -- each request is built here.
        self._transport = httpx.HTTPTransport(
            verify=self._ssl,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
            retries=0,
        )
        self._timeout = httpx.Timeout(
            limits.file_read_timeout_s, connect=limits.file_connect_timeout_s
        ).as_dict()

    def close(self) -> None:
        """Close the underlying HTTP transport."""
        self._transport.close()

    def _send(
        self, method: str, pinned: _Pinned, headers: dict[str, str], body: Iterator[bytes] | None
    ) -> httpx.Response:
        request = httpx.Request(
            method,
            pinned.url,
            headers=headers,
            content=body,
            extensions={**pinned.extensions, "timeout": self._timeout},
        )
        return self._transport.handle_request(request)

    # --- policy and pinning -------------------------------------------------

    def _pin(self, url: str, target: HttpTarget) -> list[_Pinned]:
        """Resolve once, check every address, return one pinned request per address."""
        self._policy.check_host(url, target.host)
        if target.ip is not None:
            addresses: list[IPAddress] = [target.ip]
        else:
            try:
                answers = self._resolver(target.host, target.port)
                addresses = [ipaddress.ip_address(a) for a in answers]
            except (OSError, UnicodeError, ValueError) as e:
                raise TransferFailed(url, f"cannot resolve host {target.host!r}: {e}") from e
            if not addresses:
                raise TransferFailed(url, f"host {target.host!r} resolved to no address")
        for address in addresses:
            self._policy.check_address(url, address, target.port)
        headers = {
            "Host": target.host_header,
            "Accept-Encoding": "identity",
            "User-Agent": "confide-file-agent",
        }
        extensions: dict[str, object] = {}
        if target.scheme == "https" and target.ip is None:
            extensions["sni_hostname"] = target.host
        return [
            _Pinned(
                httpx.URL(
                    scheme=target.scheme,
                    host=str(address),
                    port=target.port,
                    raw_path=target.target.encode("ascii"),
                ),
                headers,
                extensions,
                Pinned(
                    address=str(address),
                    port=target.port,
                    tls=target.scheme == "https",
                    server_hostname=target.host,
                    target=target.target,
                    headers=headers,
                ),
            )
            for address in dict.fromkeys(addresses)
        ]

    def _target(self, url: str) -> HttpTarget:
        scheme = check_url_text(url, self._limits.max_url_chars)
        self._policy.check_scheme(url, scheme)
        return parse_http_url(url)

    def _retrying(
        self, url: str, deadline: float, attempt: Callable[[int], int | str]
    ) -> int | str:
        """Run ``attempt(n)`` until it succeeds, fails for good, or attempts run out."""
        delay = self._limits.file_retry_backoff_s
        tries = max(1, self._limits.file_max_attempts)
        for n in range(tries):
            try:
                return attempt(n)
            except Transient as t:
                if n + 1 >= tries:
                    raise t.final from t
                if self._clock() + delay > deadline:
                    raise Timeout(url, "transfer deadline reached while retrying") from t
                self._sleep(delay)
                delay *= 2
        raise TransferFailed(url, "no attempt made")  # unreachable: tries >= 1

    # --- GET ----------------------------------------------------------------

    def download(self, url: str, dst: BinaryIO | BufferedDestination, max_bytes: int) -> int:
        """GET ``url`` into ``dst``; follow redirects manually; return the byte count."""
        deadline = self._clock() + self._limits.file_transfer_timeout_s
        start = dst.tell() if dst.seekable() else None
        current = url
        for _hop in range(self._limits.max_redirects + 1):
            target = self._target(current)
            pins = self._pin(current, target)

            def attempt(n: int, u: str = current, p: list[_Pinned] = pins) -> int | str:
                # each retry moves on to the next checked address (if there are several)
                return self._get_once(u, p[n % len(p)], dst, start, max_bytes, deadline)

            result = self._retrying(current, deadline, attempt)
            if isinstance(result, int):
                return result
            current = self._next_hop(current, target, result)
        raise TransferFailed(url, f"more than {self._limits.max_redirects} redirects")

    def _next_hop(self, current: str, target: HttpTarget, location: str) -> str:
        check_url_chars(location, self._limits.max_url_chars)
        nxt = urljoin(target.url, location)
        scheme = check_url_text(nxt, self._limits.max_url_chars)
        if scheme not in ("http", "https"):
            raise PolicyViolation(current, f"redirect to a {scheme!r} URL refused")
        if target.scheme == "https" and scheme == "http":
            raise PolicyViolation(current, "redirect from https to http refused")
        return nxt

    def _get_once(
        self,
        url: str,
        pinned: _Pinned,
        dst: BinaryIO | BufferedDestination,
        start: int | None,
        max_bytes: int,
        deadline: float,
    ) -> int | str:
        if start is not None:  # a retry starts the destination afresh
            try:
                dst.seek(start)
                dst.truncate()
            except OSError as e:
                raise TransferFailed(url, f"rewinding the destination failed: {e}") from e
        sink = dst if isinstance(dst, BufferedDestination) else WriteThrough(dst)
        received = [0]
        try:
            reply = open_get(
                url,
                pinned.get,
                self._ssl,
                connect_s=self._limits.file_connect_timeout_s,
                read_s=self._limits.file_read_timeout_s,
            )
            try:
                status = reply.status
                if status in _REDIRECTS:
                    location = reply.header("location")
                    if not location:
                        raise TransferFailed(url, f"HTTP {status} without a Location header")
                    return str(location)
                if status in _TRANSIENT_STATUS:
                    raise Transient(TransferFailed(url, f"HTTP {status}"))
                if not 200 <= status < 300:
                    raise TransferFailed(url, f"HTTP {status}; a 2xx reply is required")
                reply.check_framing()
                n = receive_body(
                    reply, sink, cap=max_bytes, deadline=deadline, clock=self._clock,
                    received=received,
                )  # fmt: skip
            finally:
                reply.close()
            if isinstance(sink, WriteThrough):
                try:
                    sink.flush()
                except OSError as e:
                    raise TransferFailed(url, f"writing the download failed: {e}") from e
        except Transient as t:
            if received[0] and start is None:
                # bytes already went to a destination that cannot be rewound
                raise t.final from t
            raise
        return n

    # --- PUT ----------------------------------------------------------------

    def upload(self, url: str, src: BinaryIO, size: int) -> None:
        """PUT ``size`` bytes of ``src`` to ``url``; exactly HTTP 200 is success.

        PUT is idempotent, so a transient failure is retried after rewinding
        ``src`` -- if ``src`` is seekable, or if no body byte was consumed yet.
        Redirects are not followed for uploads.
        """
        deadline = self._clock() + self._limits.file_transfer_timeout_s
        target = self._target(url)
        pins = self._pin(url, target)
        start = src.tell() if src.seekable() else None
        consumed = [False]

        def body() -> Iterator[bytes]:
            for chunk in read_exactly(src, size):
                consumed[0] = True
                if self._clock() > deadline:
                    raise Timeout(url, "transfer deadline reached")
                yield chunk

        def attempt(n: int) -> int | str:
            if start is not None:
                src.seek(start)
            try:
                return self._put_once(url, pins[n % len(pins)], body(), size)
            except Transient as t:
                if start is None and consumed[0]:  # the body cannot be sent again
                    raise t.final from t
                raise

        self._retrying(url, deadline, attempt)

    def _put_once(self, url: str, pinned: _Pinned, body: Iterator[bytes], size: int) -> int:
        headers = dict(pinned.headers)
        headers["Content-Type"] = "application/x-binary"
        headers["Content-Length"] = str(size)
        try:
            resp = self._send("PUT", pinned, headers, body)
            status = resp.status_code
            resp.close()  # the reply body is not read
        except ShortSource as e:
            raise TransferFailed(url, str(e)) from e
        except httpx.HTTPError as e:
            raise _map_httpx_error(url, e) from e
        except OSError as e:
            raise TransferFailed(url, f"reading the upload source failed: {e}") from e
        if status == 200:
            return size
        if status in _TRANSIENT_STATUS:
            raise Transient(TransferFailed(url, f"HTTP {status}"))
        raise TransferFailed(url, f"HTTP {status}; exactly 200 is required for an upload")
