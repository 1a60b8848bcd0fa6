"""Where a client may send its calls: several frontend/authentication endpoints.

Pure rules, no I/O of their own (name resolution is injected):

- :func:`parse_endpoints` reads entries ``HOST[:FRONTEND_PORT[:AUTH_PORT]]``
  (comma-separated lists, repeated options; an IPv6 address in brackets,
  ``[::1]:7777:7776``); a port left out takes the caller's default.
- :func:`resolve_endpoints` turns a name that resolves to several addresses
  into one endpoint per address (a name with one address stays a name, so its
  DNS keeps deciding; one that does not resolve is kept and fails at connect).
- :func:`call_kind` says what may be sent again after a failure: a READ (no
  effect) and a CREATE (carries an ``idempotency-key``, kept on the resend) go
  to another endpoint; every other call (ONCE) is resent only when
  :func:`never_sent` proves the first attempt never left this client.
"""

from __future__ import annotations

import enum
import ipaddress
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._errors import ClientError

__all__ = [
    "DEFAULT_AUTHENTICATION_PORT",
    "DEFAULT_FRONTEND_PORT",
    "MAX_ENDPOINTS",
    "NOT_CONNECTED",
    "RPC_KINDS",
    "CallKind",
    "Endpoint",
    "EndpointError",
    "call_kind",
    "format_endpoints",
    "never_sent",
    "parse_endpoints",
    "resolve_endpoints",
]

DEFAULT_AUTHENTICATION_PORT = 7776
DEFAULT_FRONTEND_PORT = 7777
#: Endpoints one client keeps (after resolution); more is a configuration mistake.
MAX_ENDPOINTS = 32
_MAX_ENTRY_CHARS = 300


class EndpointError(ClientError):
    """An endpoint entry is malformed (``INVALID_ARGUMENT``)."""

    def __init__(self, message: str) -> None:
        super().__init__("INVALID_ARGUMENT", message)


@dataclass(frozen=True)
class Endpoint:
    """One replica of the client APIs: its frontend and authentication ports on ``host``."""

    host: str
    frontend_port: int = DEFAULT_FRONTEND_PORT
    authentication_port: int = DEFAULT_AUTHENTICATION_PORT

    def target(self, port: int) -> str:
        """``host:port`` as gRPC wants it (an IPv6 address in brackets)."""
        return f"[{self.host}]:{port}" if ":" in self.host else f"{self.host}:{port}"

    def __str__(self) -> str:
        return f"{self.target(self.frontend_port)}:{self.authentication_port}"


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise EndpointError(f"endpoint {entry!r}: {text!r} is not a port (1-65535)")
    return int(text)


def _one(entry: str, frontend_port: int, authentication_port: int) -> Endpoint:
    if len(entry) > _MAX_ENTRY_CHARS:
        raise EndpointError(f"endpoint entry longer than {_MAX_ENTRY_CHARS} characters")
    if entry.startswith("["):
        host, sep, rest = entry[1:].partition("]")
        if not sep or not host:
            raise EndpointError(f"endpoint {entry!r}: an IPv6 address needs a closing ']'")
        try:
            ipaddress.IPv6Address(host)
        except ValueError as e:
            raise EndpointError(f"endpoint {entry!r}: {host!r} is not an IPv6 address") from e
        if rest and not rest.startswith(":"):
            raise EndpointError(f"endpoint {entry!r}: expected ':PORT' after ']'")
        ports = rest[1:].split(":") if rest else []
    else:
        host, *ports = entry.split(":")
        if not host:
            raise EndpointError(f"endpoint {entry!r}: no host")
        if any(c.isspace() or c in "/@[]" for c in host):
            raise EndpointError(f"endpoint {entry!r}: {host!r} is not a host name or address "
                                "(an IPv6 address goes in brackets)")
    if len(ports) > 2:
        raise EndpointError(f"endpoint {entry!r}: expected HOST[:FRONTEND_PORT[:AUTH_PORT]]")
    front = _port(ports[0], entry) if ports else frontend_port
    auth = _port(ports[1], entry) if len(ports) > 1 else authentication_port
    return Endpoint(host, front, auth)


def _dedupe(endpoints: Iterable[Endpoint]) -> tuple[Endpoint, ...]:
    return tuple(dict.fromkeys(endpoints))


def parse_endpoints(entries: str | Sequence[str], *,
                    frontend_port: int = DEFAULT_FRONTEND_PORT,
                    authentication_port: int = DEFAULT_AUTHENTICATION_PORT
                    ) -> tuple[Endpoint, ...]:
    """Endpoints from ``HOST[:FRONTEND_PORT[:AUTH_PORT]]`` entries, in order, without repeats.

    Each entry may itself be a comma-separated list; blanks around entries are
    ignored. Ports left out are ``frontend_port`` / ``authentication_port``.

    Raises:
        EndpointError: an entry is malformed, none is given, or more than
            :data:`MAX_ENDPOINTS`.
    """
    items = [entries] if isinstance(entries, str) else list(entries)
    parts = [p.strip() for item in items for p in item.split(",")]
    if any(not p for p in parts) and len(parts) > 1:
        raise EndpointError("an empty entry in the endpoint list (two commas in a row?)")
    parsed = _dedupe(_one(p, frontend_port, authentication_port) for p in parts if p)
    if not parsed:
        raise EndpointError("no endpoint given: HOST[:FRONTEND_PORT[:AUTH_PORT]]")
    if len(parsed) > MAX_ENDPOINTS:
        raise EndpointError(f"{len(parsed)} endpoints: at most {MAX_ENDPOINTS}")
    return parsed


def format_endpoints(endpoints: Sequence[Endpoint]) -> str:
    """The comma-separated form :func:`parse_endpoints` reads back."""
    return ",".join(str(e) for e in endpoints)


#: ``socket.getaddrinfo``'s shape: (family, type, proto, canonname, sockaddr) tuples.
Resolver = Callable[..., Sequence[tuple[Any, ...]]]


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def resolve_endpoints(endpoints: Sequence[Endpoint], *,
                      getaddrinfo: Resolver = socket.getaddrinfo) -> tuple[Endpoint, ...]:
    """Each name that resolves to several addresses becomes one endpoint per address.

    Addresses keep the resolver's order (IPv4 and IPv6 alike); a name with a
    single address, or none (it fails later, like a host that is down), stays
    as given. The result has no repeats and at most :data:`MAX_ENDPOINTS`.

    Raises:
        EndpointError: more than :data:`MAX_ENDPOINTS` after resolution.
    """
    out: list[Endpoint] = []
    for e in endpoints:
        if _is_address(e.host):
            out.append(e)
            continue
        try:
            infos = getaddrinfo(e.host, e.frontend_port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            out.append(e)
            continue
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if len(addresses) <= 1:
            out.append(e)
        else:
            out += [Endpoint(a, e.frontend_port, e.authentication_port) for a in addresses]
    resolved = _dedupe(out)
    if len(resolved) > MAX_ENDPOINTS:
        raise EndpointError(f"the names resolve to {len(resolved)} endpoints: at most "
                            f"{MAX_ENDPOINTS}")
    return resolved


# -- what may be sent again -----------------------------------------------------------------
class CallKind(enum.Enum):
    """What a client may do after a call failed without an answer."""

    READ = "read"  # no effect: resent anywhere
    CREATE = "create"  # carries an idempotency key, kept on the resend: resent anywhere
    ONCE = "once"  # has an effect: resent only when it provably never left


_AUTH = "/teaclave_authentication_service_proto.TeaclaveAuthenticationApi/"
_FRONT = "/teaclave_frontend_service_proto.TeaclaveFrontend/"
_V1 = "/confide.v1.ConfideFrontend/"
_R, _C, _O = CallKind.READ, CallKind.CREATE, CallKind.ONCE

#: Every client RPC, by its full gRPC method name. A name not listed is ONCE.
RPC_KINDS: Mapping[str, CallKind] = {
    # A repeated login only issues one more token (and counts once more in the
    # failed-login throttle when the password is wrong).
    _AUTH + "UserLogin": _R,
    _AUTH + "ListUsers": _R,
    _AUTH + "UserRegister": _O,  # a second one is refused: the user exists
    _AUTH + "UserUpdate": _O,
    _AUTH + "UserChangePassword": _O,
    _AUTH + "ResetUserPassword": _O,  # each makes a new random password
    _AUTH + "DeleteUser": _O,
    _FRONT + "RegisterInputFile": _C,
    _FRONT + "RegisterOutputFile": _C,
    _FRONT + "RegisterFusionOutput": _C,
    _FRONT + "RegisterInputFromOutput": _C,  # its id derives from the output's: same answer
    _FRONT + "RegisterFunction": _C,
    _FRONT + "CreateTask": _C,
    _FRONT + "GetInputFile": _R,
    _FRONT + "GetOutputFile": _R,
    _FRONT + "GetFunction": _R,
    _FRONT + "GetFunctionUsageStats": _R,
    _FRONT + "ListFunctions": _R,
    _FRONT + "GetTask": _R,
    _FRONT + "QueryAuditLogs": _R,
    _FRONT + "UpdateInputFile": _O,
    _FRONT + "UpdateOutputFile": _O,
    _FRONT + "UpdateFunction": _O,
    _FRONT + "DeleteFunction": _O,
    _FRONT + "DisableFunction": _O,
    _FRONT + "AssignData": _O,
    _FRONT + "ApproveTask": _O,
    _FRONT + "InvokeTask": _O,
    _FRONT + "CancelTask": _O,
    _V1 + "WaitTask": _R,
    _V1 + "ListTasks": _R,
    _V1 + "ListPendingTasks": _R,
    _V1 + "ReviewTask": _R,
    _V1 + "QueryParticipantAudit": _R,
    _V1 + "GetSigningKeys": _R,
    _V1 + "GetApprovalStatement": _R,
    _V1 + "GetReceipt": _R,
    _V1 + "CreateBlobUrls": _R,  # presigns URLs for a fresh name; stores nothing
    _V1 + "CreateTask": _C,  # a task with its approval policy, keyed like Teaclave's
    _V1 + "RegisterFunction": _C,
    _V1 + "RegisterInputFile": _C,
    _V1 + "RegisterSigningKey": _C,  # registers or replaces my key: the same key twice is one
    _V1 + "SetCodeReview": _O,
    _V1 + "RejectTask": _O,
    _V1 + "SetApprovalPolicy": _O,
    _V1 + "SetFunctionApprovalPolicy": _O,
    _V1 + "SignApproval": _O,
    _V1 + "RevokeApproval": _O,
}


def call_kind(method: str) -> CallKind:
    """The kind of the RPC ``/package.Service/Method``; ONCE when unknown (fail safe)."""
    return RPC_KINDS.get(method, CallKind.ONCE)


#: What grpc says when no connection was made, so no byte of the request left.
_NOT_CONNECTED = ("failed to connect to all addresses", "DNS resolution failed",
                  "empty address list")
#: The reason of the client's own UNAVAILABLE when no endpoint could be connected.
NOT_CONNECTED = "NOT_CONNECTED"
#: Reasons for a call that was not acted on: the client's own (no connection), and a
#: confide server's when it refused the call before doing anything.
_REFUSED_BEFORE_WORK = frozenset({NOT_CONNECTED, "SHUTTING_DOWN"})


def never_sent(error: ClientError) -> bool:
    """True when ``error`` proves the request was never acted on, so resending cannot repeat it.

    That is UNAVAILABLE because no connection could be made (refused,
    unreachable, TLS handshake failed, name not resolved), or UNAVAILABLE with a
    reason by which the (attested) server says it refused the call before any
    work, such as ``SHUTTING_DOWN`` while it drains. A connection that broke
    after the request went out ("Socket closed", a reset) proves nothing: the
    server may have done the work.
    """
    if error.code != "UNAVAILABLE":
        return False
    if error.reason in _REFUSED_BEFORE_WORK:
        return True
    return error.message.startswith(_NOT_CONNECTED)
