"""URL policy: what the file agent may fetch from and store to (pure, no I/O).

Parsing is deliberately stricter than RFC 3986 so that no other parser (the
resolver, httpx, a proxy) can read the URL differently from the check: only
printable ASCII without spaces or backslashes, no user info, no zone ids, no
numeric host forms other than canonical dotted-quad IPv4 and bracketed IPv6.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ._errors import InvalidUrl, PolicyViolation

__all__ = [
    "HttpTarget",
    "IPAddress",
    "UrlPolicy",
    "address_class",
    "check_url_chars",
    "check_url_text",
    "parse_http_url",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

KNOWN_SCHEMES = frozenset({"http", "https", "file", "data", "fusion"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)\Z")
_NETLOC = re.compile(r"(?:\[[0-9A-Fa-f:.%]+\]|[A-Za-z0-9._-]+)(?::[0-9]{1,5})?\Z")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, compatible, 6to4, NAT64)."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    value = int(addr)
    if 1 < value < 2**32:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(value)
    return None


def address_class(addr: IPAddress) -> str | None:
    """Classify an address that is not plainly globally routable.

    IPv6 addresses that embed an IPv4 address (v4-mapped ``::ffff:a.b.c.d``,
    IPv4-compatible, 6to4, NAT64 ``64:ff9b::/96``) are classified by the
    embedded IPv4 address.

    Returns:
        ``None`` for a global unicast address, else the first matching class of
        ``unspecified``, ``loopback``, ``link-local``, ``multicast``,
        ``private``, ``reserved``, ``non-global``.
    """
    if isinstance(addr, ipaddress.IPv6Address):
        inner = _embedded_ipv4(addr)
        if inner is not None:
            return address_class(inner)
    if addr.is_unspecified:
        return "unspecified"
    if addr.is_loopback:
        return "loopback"
    if addr.is_link_local:
        return "link-local"
    if addr.is_multicast:
        return "multicast"
    if addr.is_private:
        return "private"
    if addr.is_reserved:
        return "reserved"
    if not addr.is_global:
        return "non-global"
    return None


def _valid_host_pattern(pattern: str) -> bool:
    if pattern == "*":
        return True
    name = pattern[2:] if pattern.startswith("*.") else pattern
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return bool(name) and all(_LABEL.match(label) for label in name.split("."))
    return not pattern.startswith("*.")


@dataclass(frozen=True)
class UrlPolicy:
    """What the file agent may reach. Construct one explicitly per deployment.

    Attributes:
        schemes: allowed schemes, a subset of ``http https file data fusion``.
        hosts: host patterns for http(s): ``"*"`` (any host), an exact host name
            or IP literal (``"files.example.com"``, ``"::1"``), or
            ``"*.example.com"`` (any name strictly below ``example.com``).
            Empty: no http(s) host is allowed.
        allow_loopback: accept loopback addresses (127.0.0.0/8, ::1); only the
            all-in-one embedded deployment, whose blob store listens on
            loopback, should set it.
        loopback_ports: when loopback is allowed, the only ports it is allowed
            on (``None``: any port). Set it to the blob store's port.
        allow_private: accept private and other non-global unicast addresses
            (RFC 1918, fc00::/7, 100.64.0.0/10, ...); for a distributed
            deployment whose object store sits on a private network.
            Link-local (cloud metadata at 169.254.169.254), multicast,
            reserved and unspecified addresses are always refused.
        file_roots: absolute directories inside which ``file://`` URLs may
            point; required when ``file`` is allowed.
        fusion_dir: the platform's fusion directory, the target of
            ``fusion:///TEACLAVE_FUSION_BASE/<rel>``; required when ``fusion``
            is allowed.
    """

    schemes: frozenset[str] = frozenset({"http", "https", "data"})
    hosts: tuple[str, ...] = ("*",)
    allow_loopback: bool = False
    loopback_ports: frozenset[int] | None = None
    allow_private: bool = False
    file_roots: tuple[str, ...] = ()
    fusion_dir: str | None = None
    _classes: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        unknown = set(self.schemes) - KNOWN_SCHEMES
        if unknown:
            raise ValueError(f"unknown URL schemes in policy: {sorted(unknown)}")
        if "file" in self.schemes and not self.file_roots:
            raise ValueError("the file scheme needs at least one file root")
        if any(not root.startswith("/") for root in self.file_roots):
            raise ValueError("file roots must be absolute paths")
        if "fusion" in self.schemes and not self.fusion_dir:
            raise ValueError("the fusion scheme needs a fusion directory")
        if self.fusion_dir is not None and not self.fusion_dir.startswith("/"):
            raise ValueError("the fusion directory must be an absolute path")
        for pattern in self.hosts:
            if not _valid_host_pattern(pattern):
                raise ValueError(f"invalid host pattern: {pattern!r}")
        classes = set()
        if self.allow_loopback:
            classes.add("loopback")
        if self.allow_private:
            classes.update({"private", "non-global"})
        object.__setattr__(self, "_classes", frozenset(classes))

    @classmethod
    def embedded(
        cls,
        *,
        blob_store_port: int | None,
        fusion_dir: str | None = None,
        file_roots: tuple[str, ...] = (),
        extra_loopback_ports: tuple[int, ...] = (),
    ) -> UrlPolicy:
        """The all-in-one default: public http(s), ``data:``, loopback to the blob store.

        Args:
            blob_store_port: the port of the local blob store; loopback is
                allowed on that port only (``None``: loopback refused).
            fusion_dir: enables ``fusion://`` when given.
            file_roots: enables ``file://`` inside these directories when given.
            extra_loopback_ports: further loopback ports the operator opened
                explicitly (``confide serve --allow-loopback-port``); empty by
                default.
        """
        schemes = {"http", "https", "data"}
        if fusion_dir is not None:
            schemes.add("fusion")
        if file_roots:
            schemes.add("file")
        ports = set(extra_loopback_ports)
        if blob_store_port is not None:
            ports.add(blob_store_port)
        return cls(
            schemes=frozenset(schemes),
            allow_loopback=bool(ports),
            loopback_ports=frozenset(ports) if ports else None,
            fusion_dir=fusion_dir,
            file_roots=file_roots,
        )

    def check_scheme(self, url: str, scheme: str) -> None:
        """Raise :class:`PolicyViolation` unless ``scheme`` is allowed."""
        if scheme not in self.schemes:
            raise PolicyViolation(url, f"scheme {scheme!r} is not allowed")

    def check_host(self, url: str, host: str) -> None:
        """Raise :class:`PolicyViolation` unless the (normalised) host matches a pattern."""
        for pattern in self.hosts:
            if pattern == "*" or pattern == host:
                return
            if pattern.startswith("*.") and host.endswith(pattern[1:]):
                return
        raise PolicyViolation(url, f"host {host!r} is not in the allowed hosts")

    def check_address(self, url: str, addr: IPAddress, port: int) -> None:
        """Raise :class:`PolicyViolation` unless a connection to ``addr:port`` is allowed."""
        kind = address_class(addr)
        if kind is None:
            return
        if kind not in self._classes:
            raise PolicyViolation(url, f"address {addr} is {kind} and not allowed")
        if kind == "loopback" and self.loopback_ports is not None:
            if port not in self.loopback_ports:
                raise PolicyViolation(url, f"loopback port {port} is not allowed")


def check_url_chars(url: str, max_chars: int) -> None:
    """Check the length and characters of a URL or URL reference.

    Raises:
        PolicyViolation: longer than ``max_chars``.
        InvalidUrl: empty, non-printable-ASCII, whitespace, backslash.
    """
    if len(url) > max_chars:
        raise PolicyViolation(url, f"URL has {len(url)} chars, more than the cap of {max_chars}")
    if not url:
        raise InvalidUrl(url, "empty URL")
    if any(not 0x21 <= ord(c) <= 0x7E or c == "\\" for c in url):
        raise InvalidUrl(url, "URL contains a space, control, backslash or non-ASCII character")


def check_url_text(url: str, max_chars: int) -> str:
    """Check the raw text of an absolute URL and return its lower-cased scheme.

    Raises:
        PolicyViolation: longer than ``max_chars``.
        InvalidUrl: empty, non-printable-ASCII, whitespace, backslash, no scheme.
    """
    check_url_chars(url, max_chars)
    scheme, sep, _ = url.partition(":")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        raise InvalidUrl(url, "URL has no scheme")
    return scheme.lower()


@dataclass(frozen=True)
class HttpTarget:
    """A parsed, normalised http(s) URL.

    Attributes:
        scheme: ``http`` or ``https``.
        host: lower-case host name without trailing dot, or an IP literal
            without brackets.
        port: explicit or default port.
        target: path and query as sent in the request line (``/`` if empty).
        ip: the address when the host is an IP literal, else ``None``.
    """

    scheme: str
    host: str
    port: int
    target: str
    ip: IPAddress | None

    @property
    def host_header(self) -> str:
        """The Host header value (and the authority for relative redirects)."""
        host = f"[{self.host}]" if isinstance(self.ip, ipaddress.IPv6Address) else self.host
        if self.port == _DEFAULT_PORTS[self.scheme]:
            return host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The normalised URL."""
        return f"{self.scheme}://{self.host_header}{self.target}"


def parse_http_url(url: str) -> HttpTarget:
    """Parse an http(s) URL whose text passed :func:`check_url_text`.

    Raises:
        InvalidUrl: no host, user info, bad port, zone id, odd numeric host.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise InvalidUrl(url, f"malformed URL: {e}") from e
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidUrl(url, f"not an http(s) URL: {scheme!r}")
    if "@" in parts.netloc:
        raise InvalidUrl(url, "user info in URLs is not accepted")
    if not parts.netloc:
        raise InvalidUrl(url, "URL has no host")
    if not _NETLOC.match(parts.netloc):
        raise InvalidUrl(url, f"malformed authority {parts.netloc!r}")
    raw_host = parts.hostname or ""
    if not raw_host:
        raise InvalidUrl(url, "URL has no host")
    if port is None:
        port = _DEFAULT_PORTS[scheme]
    elif port == 0:
        raise InvalidUrl(url, "port 0 is not accepted")
    ip: IPAddress | None
    if parts.netloc.startswith("["):
        if "%" in raw_host:
            raise InvalidUrl(url, "IPv6 zone ids are not accepted")
        try:
            ip = ipaddress.IPv6Address(raw_host)
        except ValueError as e:
            raise InvalidUrl(url, "malformed IPv6 literal") from e
        host = str(ip)
    else:
        host = raw_host.rstrip(".") if raw_host.endswith(".") else raw_host
        labels = host.split(".")
        if not host or not all(_LABEL.match(label) for label in labels):
            raise InvalidUrl(url, f"malformed host name {raw_host!r}")
        try:
            ip = ipaddress.IPv4Address(host)
        except ValueError:
            ip = None
            if _NUMERIC_LABEL.match(labels[-1]):
                raise InvalidUrl(url, f"non-canonical numeric host {raw_host!r}") from None
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    return HttpTarget(scheme=scheme, host=host, port=port, target=target, ip=ip)
