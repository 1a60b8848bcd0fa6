"""Several replicas of the client APIs behind one session: attest each, stick to one, fail over.

An :class:`EndpointPool` holds one slot per :class:`~._endpoints.Endpoint`.
A slot's channels (authentication and frontend) are made by a *connector*:
with trust files it attests the endpoint first and pins the certificates that
passed, exactly as a single-server session does; with a pinned certificate it
only pins. At connect every endpoint is tried in parallel; the session needs
one that attested.

Calls go to the current slot and stay there. A call that fails UNAVAILABLE
marks that slot down (its channels are dropped: the replica is attested again
before it is used again, since a restarted one has a new key and certificate)
and moves on to the next slot, and the call is resent there when that is safe
(:func:`~._endpoints.call_kind`, :func:`~._endpoints.never_sent`). A slot whose
attestation was refused is never used in this session.

:class:`FailoverChannel` gives the generated gRPC stubs this behaviour: it
stands where a ``grpc.Channel`` would (only unary-unary calls, all that the
client APIs have).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import grpc

from ._attested import AttestedEndpoint, ServerAttestationError
from ._endpoints import NOT_CONNECTED, CallKind, Endpoint, call_kind, never_sent
from ._errors import ClientError, from_rpc_error

__all__ = ["Api", "Connector", "EndpointChannels", "EndpointPool", "FailoverCall",
           "FailoverChannel"]

_log = logging.getLogger(__name__)
Api = Literal["authentication", "frontend"]
#: A down endpoint is not tried again (attested again) sooner than this.
RETRY_DOWN_AFTER_S = 1.0
#: Frontend certificates a session remembers (whose tree-head signatures it accepts).
_KEPT_CERTIFICATES = 64


@dataclass(frozen=True)
class EndpointChannels:
    """One endpoint's pinned channels and what was verified to pin them."""

    endpoint: Endpoint
    authentication: grpc.Channel
    frontend: grpc.Channel
    attested: tuple[AttestedEndpoint, ...]  # empty when pinned by hand
    frontend_certificate_der: bytes | None

    def channel(self, api: Api) -> grpc.Channel:
        return self.authentication if api == "authentication" else self.frontend

    def close(self) -> None:
        self.authentication.close()
        self.frontend.close()


Connector = Callable[[Endpoint], EndpointChannels]


class _Slot:
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.channels: EndpointChannels | None = None
        self.refused: ServerAttestationError | None = None
        self.down_at: float | None = None
        self.last_error: ClientError | None = None


class EndpointPool:
    """The session's endpoints, the one in use, and their channels (thread-safe).

    Args:
        endpoints: in order of preference (the first one that attests is used first).
        connector: makes (attesting first, when so configured) one endpoint's channels;
            None for fixed channels that cannot be made again.
        clock: monotonic seconds (injected for tests).
    """

    def __init__(self, endpoints: Sequence[Endpoint], connector: Connector | None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not endpoints:
            raise ClientError("INVALID_ARGUMENT", "no endpoint to connect to")
        self._slots = [_Slot(e) for e in endpoints]
        self._connector = connector
        self._clock = clock
        self._lock = threading.Lock()
        self._current = 0
        self._retired: list[EndpointChannels] = []  # closed with the pool, not before:
        # a call on another thread may still be using them.
        self._certificates: list[bytes] = []  # every frontend certificate that attested

    @classmethod
    def fixed(cls, channels: EndpointChannels) -> EndpointPool:
        """One endpoint whose channels were made by the caller."""
        pool = cls([channels.endpoint], None)
        pool._install(pool._slots[0], channels)
        return pool

    # -- connecting ------------------------------------------------------------------
    def _install(self, slot: _Slot, channels: EndpointChannels) -> None:
        slot.channels, slot.down_at, slot.last_error = channels, None, None
        der = channels.frontend_certificate_der
        if der is not None and der not in self._certificates:
            # The newest ones: a replica re-attests hourly and signs with its current key.
            self._certificates = [*self._certificates, der][-_KEPT_CERTIFICATES:]

    def _connect(self, slot: _Slot) -> EndpointChannels | None:
        """Make ``slot``'s channels; None when it is down or refused (recorded on it)."""
        if self._connector is None:
            return slot.channels
        try:
            channels = self._connector(slot.endpoint)
        except ServerAttestationError as e:
            _log.warning("endpoint %s refused: it did not attest (%s); not used in this "
                         "session", slot.endpoint, e.reason)
            with self._lock:
                slot.refused = e
            return None
        except ClientError as e:
            if e.code != "UNAVAILABLE":
                raise  # a mistake of the caller's (a certificate that is not one, ...)
            with self._lock:
                slot.down_at, slot.last_error = self._clock(), e
            return None
        with self._lock:
            if slot.channels is not None:  # another thread was faster
                self._retired.append(channels)
                return slot.channels
            self._install(slot, channels)
        return channels

    def connect_all(self) -> None:
        """Attest every endpoint side by side; start with the first that attested.

        Raises:
            ServerAttestationError: no endpoint attested and one was refused.
            ClientError: ``UNAVAILABLE``, no endpoint could be reached.
        """
        with ThreadPoolExecutor(max_workers=min(8, len(self._slots))) as pool:
            list(pool.map(self._connect, self._slots))
        with self._lock:
            ready = [i for i, s in enumerate(self._slots) if s.channels is not None]
            if ready:
                self._current = ready[0]
                return
        refused = [s.refused for s in self._slots if s.refused is not None]
        if refused:
            raise refused[0]
        raise ClientError("UNAVAILABLE", "no endpoint could be reached: " + "; ".join(
            f"{s.endpoint}: {s.last_error.message if s.last_error else 'down'}"
            for s in self._slots))

    # -- using -----------------------------------------------------------------------
    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return tuple(s.endpoint for s in self._slots)

    @property
    def current(self) -> EndpointChannels | None:
        """The endpoint calls go to now (None while every one is down)."""
        with self._lock:
            return self._slots[self._current].channels

    @property
    def frontend_certificates_der(self) -> tuple[bytes, ...]:
        """Every frontend certificate this session attested (or pinned)."""
        with self._lock:
            return tuple(self._certificates)

    def status(self) -> list[tuple[Endpoint, str]]:
        """Each endpoint and its state: ``in use``, ``ready``, ``down`` or ``refused``."""
        with self._lock:
            return [(s.endpoint, "refused" if s.refused is not None else
                     "in use" if i == self._current and s.channels is not None else
                     "ready" if s.channels is not None else "down")
                    for i, s in enumerate(self._slots)]

    def candidates(self) -> list[int]:
        """Slot indexes to try, the current one first, then the others in order."""
        with self._lock:
            n = len(self._slots)
            order = [(self._current + k) % n for k in range(n)]
            return [i for i in order if self._slots[i].refused is None]

    def channels(self, index: int) -> EndpointChannels | None:
        """Slot ``index``'s channels, attesting it again if it was down (None: unusable)."""
        slot = self._slots[index]
        with self._lock:
            if slot.refused is not None:
                return None
            if slot.channels is not None:
                return slot.channels
            if self._connector is None:
                return None
            if slot.down_at is not None and \
                    self._clock() - slot.down_at < RETRY_DOWN_AFTER_S and \
                    index != self._current:
                return None
        return self._connect(slot)

    def succeeded(self, index: int) -> None:
        """A call on slot ``index`` was answered: stay there."""
        with self._lock:
            if self._current != index:
                _log.info("now using endpoint %s", self._slots[index].endpoint)
                self._current = index

    def failed(self, index: int, error: ClientError) -> None:
        """Slot ``index`` did not answer (UNAVAILABLE): drop its channels, move on."""
        with self._lock:
            slot = self._slots[index]
            slot.down_at, slot.last_error = self._clock(), error
            if slot.channels is not None and self._connector is not None:
                self._retired.append(slot.channels)
                slot.channels = None
            if self._current == index and len(self._slots) > 1:
                self._current = (index + 1) % len(self._slots)
                _log.warning("endpoint %s is unavailable (%s): failing over to %s",
                             slot.endpoint, error.message, self._slots[self._current].endpoint)

    def close(self) -> None:
        with self._lock:
            channels = [s.channels for s in self._slots if s.channels is not None]
            channels += self._retired
            for s in self._slots:
                s.channels = None
            self._retired = []
        for c in channels:
            c.close()


class FailoverCall:
    """One unary RPC, sent to the pool's current endpoint and failed over (module docstring)."""

    def __init__(self, pool: EndpointPool, api: Api, method: str,
                 request_serializer: Callable[[Any], bytes] | None,
                 response_deserializer: Callable[[bytes], Any] | None) -> None:
        self._pool = pool
        self._api: Api = api
        self.method = method
        self.kind: CallKind = call_kind(method)
        self._serializer = request_serializer
        self._deserializer = response_deserializer
        self._callables: dict[int, tuple[grpc.Channel, Any]] = {}

    def _callable(self, channel: grpc.Channel) -> Any:
        key = id(channel)
        hit = self._callables.get(key)
        if hit is None or hit[0] is not channel:
            hit = (channel, channel.unary_unary(
                self.method, request_serializer=self._serializer,
                response_deserializer=self._deserializer))
            self._callables[key] = hit
        return hit[1]

    def __call__(self, request: Any, timeout: float | None = None,
                 metadata: Sequence[tuple[str, str]] | None = None, **kwargs: Any) -> Any:
        """The answer of the first endpoint that gives one.

        Raises:
            grpc.RpcError: the endpoint's error when it is not UNAVAILABLE, when the
                call may not be resent, or the last one when no endpoint answered.
            ClientError: ``UNAVAILABLE`` when no endpoint could even be connected.
        """
        last: grpc.RpcError | None = None
        for index in self._pool.candidates():
            channels = self._pool.channels(index)
            if channels is None:
                continue
            try:
                answer = self._callable(channels.channel(self._api))(
                    request, timeout=timeout, metadata=metadata, **kwargs)
            except grpc.RpcError as e:
                error = from_rpc_error(e)
                if error.code != "UNAVAILABLE":
                    raise
                self._pool.failed(index, error)
                if self.kind is CallKind.ONCE and not never_sent(error):
                    raise  # it may have been acted on: the caller must look before retrying
                last = e
                continue
            self._pool.succeeded(index)
            return answer
        if last is not None:
            raise last
        raise ClientError("UNAVAILABLE", "no endpoint is reachable: " + ", ".join(
            f"{e} ({state})" for e, state in self._pool.status()), reason=NOT_CONNECTED)


class FailoverChannel:
    """What the generated stubs take as a channel: unary calls through an :class:`EndpointPool`."""

    def __init__(self, pool: EndpointPool, api: Api) -> None:
        self.pool = pool
        self._api: Api = api

    def unary_unary(self, method: str, request_serializer: Callable[[Any], bytes] | None = None,
                    response_deserializer: Callable[[bytes], Any] | None = None,
                    _registered_method: bool = False) -> FailoverCall:
        return FailoverCall(self.pool, self._api, method, request_serializer,
                            response_deserializer)

    def close(self) -> None:
        self.pool.close()
