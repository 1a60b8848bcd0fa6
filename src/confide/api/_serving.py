"""Building gRPC servers: TLS, limits, where each handler runs, and the one
place where domain errors become gRPC statuses.

Every server of a process is a ``grpc.aio`` server on one event loop thread
(:class:`RpcLoop`). A handler runs in one of three places:

* **inline** on the loop (marked with :func:`inline`): short, non-blocking
  work such as the task RPCs' few SQLite statements. No thread hand-off, so
  no wake-up of a pool thread and no GIL ping-pong between threads, which
  measured as most of the server's CPU on the task path (see
  docs/architecture.md, "Where the server's time goes"). With PostgreSQL,
  whose every statement is a network round trip, a server built with
  ``inline="suspended"`` runs them in a greenlet on the loop instead
  (``confide._suspend``), parked while the database answers;
* **async** (``async def`` handlers): waits, such as WaitTask and the
  workers' long-poll, await an event instead of parking a thread;
* **in the server's thread pool** (the default): everything that may block
  or burn CPU (argon2 password hashing, attestation, key enrolment).

The interceptor also gives every unary RPC a request id (the caller's
``x-request-id`` header when it is a short token, else a fresh one) and, when
the request names a task, its task id, as logging context
(``confide.telemetry``); with ``metrics=True`` it counts each RPC by method and
status code and times it (``confide_grpc_server_*``). Streaming RPCs (health
Watch, reflection) pass through untouched.

A server built with a :class:`ServingGate` refuses new unary RPCs with
UNAVAILABLE and the gate's reason once the gate is closed (the server is
shutting down), except health checks, which keep answering (NOT_SERVING).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent import futures
from typing import Any, Literal, TypeVar

import grpc
import grpc.aio

from .. import _suspend
from ..errors import ErrorDetail, ServiceError
from ..rpc._rich_status import status_trailer
from ..services._outage import outage_status
from ..telemetry import REQUEST_ID, TASK_ID, new_request_id, valid_request_id
from ..telemetry._metrics import RPC_HANDLED, RPC_HANDLING_SECONDS

__all__ = ["ErrorInterceptor", "Inline", "RpcLoop", "ServingGate", "build_server", "inline",
           "metadata_value"]

_log = logging.getLogger(__name__)
_STATUS = {sc.value[0]: sc for sc in grpc.StatusCode}
#: The detail of a refusal by a closed gate: the call was not acted on.
_GATE_CLOSED = ErrorDetail("SHUTTING_DOWN", (), "retry on another replica, or once this one "
                                                 "is back")
_INLINE = "__confide_inline__"
_TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_HEALTH_PREFIX = "/grpc.health.v1.Health/"
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
#: How :func:`inline` handlers run: on the loop, or in a greenlet on it whose
#: waits for a socket park (``confide._suspend``: PostgreSQL round trips).
Inline = Literal["loop", "suspended"]


def inline(fn: F) -> F:
    """Mark a synchronous handler to run on the event loop itself.

    Only for handlers that neither wait nor compute for long: while one runs,
    every other RPC of the process waits for it.
    """
    setattr(fn, _INLINE, True)
    return fn


class RpcLoop:
    """The event loop thread every gRPC server of this process is served on."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="rpc-loop",
                                        daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop from another thread and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class ServingGate:
    """Open until :meth:`close`; then the servers built with it refuse new RPCs."""

    def __init__(self) -> None:
        self._reason: str | None = None

    def close(self, reason: str) -> None:
        """Refuse every later RPC with UNAVAILABLE and ``reason`` (a plain store)."""
        self._reason = reason

    @property
    def reason(self) -> str | None:
        """None while open, else why RPCs are refused."""
        return self._reason


class ErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Maps :class:`ServiceError` to its status; anything unexpected to INTERNAL.

    Also enforces the message-size limit with Teaclave's status (OUT_OF_RANGE)
    and text; grpcio itself refuses far larger messages with RESOURCE_EXHAUSTED.
    It places each handler (inline, async or in ``pool``; module docstring),
    sets the logging context and, with ``metrics``, records the RPC.
    """

    def __init__(self, max_message_bytes: int, pool: futures.Executor, *,
                 inline: Inline = "loop", metrics: bool = False,
                 gate: ServingGate | None = None) -> None:
        self._max = max_message_bytes
        self._pool = pool
        self._gate = gate
        self._inline = inline
        self._metrics = metrics
        self._wrapped: dict[str, Any] = {}  # method path -> wrapped handler, built once

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], details: Any
    ) -> Any:
        cached = self._wrapped.get(details.method)
        if cached is not None:
            return cached
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        wrapped_handler = self._wrap(handler, details.method)
        self._wrapped[details.method] = wrapped_handler
        return wrapped_handler

    def _wrap(self, handler: Any, method: str) -> Any:
        inner = handler.unary_unary
        limit = self._max
        pool = self._pool
        if inspect.iscoroutinefunction(inner):
            call: Callable[[Any, Any], Awaitable[Any]] = inner
        elif getattr(inner, _INLINE, False):
            if self._inline == "loop":
                async def call(request: Any, context: Any) -> Any:
                    return inner(request, context)
            else:
                async def call(request: Any, context: Any) -> Any:
                    return await _suspend.run(inner, request, context)
        else:
            async def call(request: Any, context: Any) -> Any:
                # The pool thread logs with this RPC's request and task ids.
                return await asyncio.get_running_loop().run_in_executor(
                    pool, contextvars.copy_context().run, inner, request, context)

        record = _Recorder(method) if self._metrics else None
        gate = None if method.startswith(_HEALTH_PREFIX) else self._gate

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            start = time.perf_counter()
            code = "OK"
            if gate is not None and gate.reason is not None:
                if record is not None:
                    record("UNAVAILABLE", time.perf_counter() - start)
                # The reason tells a client with several endpoints that nothing
                # was done, so even a call with an effect may go to another one.
                await context.abort(grpc.StatusCode.UNAVAILABLE, gate.reason,
                                    trailing_metadata=status_trailer(
                                        grpc.StatusCode.UNAVAILABLE.value[0], gate.reason,
                                        _GATE_CLOSED))
            REQUEST_ID.set(valid_request_id(metadata_value(context, "x-request-id"))
                           or new_request_id())
            if "task_id" in request.DESCRIPTOR.fields_by_name:
                task_id = request.task_id
                TASK_ID.set(task_id if _TASK_ID.fullmatch(task_id) else None)
            try:
                size = request.ByteSize()
                if size > limit:
                    code = "OUT_OF_RANGE"
                    await context.abort(
                        grpc.StatusCode.OUT_OF_RANGE,
                        f"Error, message length too large: found {size} bytes, "
                        f"the limit is: {limit} bytes",
                    )
                try:
                    try:
                        return await call(request, context)
                    except Exception as e:  # an outage no service mapped (internal RPCs)
                        outage = outage_status(e, method)
                        if outage is None:
                            raise
                        raise outage from e
                except ServiceError as e:
                    status = _STATUS[int(e.code)]
                    code = status.name
                    trailer = () if e.detail is None else status_trailer(
                        int(e.code), e.message, e.detail)
                    await context.abort(status, e.message, trailing_metadata=trailer)
                except grpc.aio.AbortError:  # raised by context.abort: already answered
                    code = _code_name(context)
                    raise
                except asyncio.CancelledError:
                    code = "CANCELLED"
                    raise
                except Exception:  # noqa: BLE001 - last resort: log it, answer INTERNAL
                    _log.exception("unexpected error in %s", method)
                    code = "INTERNAL"
                    await context.abort(grpc.StatusCode.INTERNAL, "service internal error")
            finally:
                if record is not None:
                    record(code, time.perf_counter() - start)

        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _code_name(context: grpc.aio.ServicerContext) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if isinstance(code, int) and code in _STATUS:
        return str(_STATUS[code].name)
    return "UNKNOWN"


class _Recorder:
    """One method's metric children, bound once (labels() costs a lookup per call)."""

    def __init__(self, method: str) -> None:
        service, _, name = method.lstrip("/").partition("/")
        self._service, self._name = service, name
        self._seconds = RPC_HANDLING_SECONDS.labels(service, name)
        self._handled: dict[str, Any] = {}

    def __call__(self, code: str, seconds: float) -> None:
        self._seconds.observe(seconds)
        counter = self._handled.get(code)
        if counter is None:
            counter = self._handled[code] = RPC_HANDLED.labels(self._service, self._name, code)
        counter.inc()


def metadata_value(context: grpc.aio.ServicerContext, key: str) -> str | None:
    """A request header as visible ASCII, or None (spec §1.5)."""
    for k, v in context.invocation_metadata() or ():
        if k == key:
            if isinstance(v, bytes) or not v.isascii() or not v.isprintable():
                return None
            return str(v)
    return None


def build_server(
    loop: RpcLoop,
    *,
    max_message_bytes: int,
    max_workers: int = 256,
    inline: Inline = "loop",
    metrics: bool = False,
    gate: ServingGate | None = None,
    options: Sequence[tuple[str, int]] = (),
) -> grpc.aio.Server:
    """A ``grpc.aio`` server on ``loop`` with its own pool for blocking handlers.

    ``inline="suspended"`` runs :func:`inline` handlers in greenlets parked on
    their sockets: for a database across the network, whose round trips would
    otherwise stall the loop.
    ``metrics=True`` records every unary RPC (``confide_grpc_server_*``).
    ``gate``: once closed, new RPCs (but health checks) get UNAVAILABLE.
    ``options``: more gRPC server options (the scheduler's keepalive, rpc._keepalive).
    Add handlers and ports from any thread, then ``loop.run(server.start())``.
    """
    hard_cap = max_message_bytes * 2 + 1024 * 1024
    pool = futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rpc")

    async def make() -> grpc.aio.Server:
        return grpc.aio.server(
            interceptors=[ErrorInterceptor(max_message_bytes, pool, inline=inline,
                                           metrics=metrics, gate=gate)],
            options=[
                ("grpc.max_receive_message_length", hard_cap),
                ("grpc.max_send_message_length", hard_cap),
                ("grpc.so_reuseport", 0),
                *options,
            ],
        )

    return loop.run(make())
