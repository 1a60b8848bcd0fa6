"""Building gRPC servers: TLS, limits and the one place where domain errors
become gRPC statuses."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import Any

import grpc

from ..errors import ServiceError

__all__ = ["ErrorInterceptor", "build_server", "metadata_value"]

_log = logging.getLogger(__name__)
_STATUS = {sc.value[0]: sc for sc in grpc.StatusCode}


class ErrorInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Maps :class:`ServiceError` to its status; anything unexpected to INTERNAL.

    Also enforces the message-size limit with Teaclave's status (OUT_OF_RANGE)
    and text; grpcio itself refuses far larger messages with RESOURCE_EXHAUSTED.
    """

    def __init__(self, max_message_bytes: int) -> None:
        self._max = max_message_bytes
        self._wrapped: dict[str, Any] = {}  # method path -> wrapped handler, built once

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        cached = self._wrapped.get(details.method)
        if cached is not None:
            return cached
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        wrapped_handler = self._wrap(handler, details.method)
        self._wrapped[details.method] = wrapped_handler
        return wrapped_handler

    def _wrap(self, handler: Any, method: str) -> Any:
        inner = handler.unary_unary
        limit = self._max

        def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
            size = request.ByteSize()
            if size > limit:
                context.abort(
                    grpc.StatusCode.OUT_OF_RANGE,
                    f"Error, message length too large: found {size} bytes, "
                    f"the limit is: {limit} bytes",
                )
            try:
                return inner(request, context)
            except ServiceError as e:
                context.abort(_STATUS[int(e.code)], e.message)
            except Exception:
                if context.code() is not None:  # already aborted by the handler
                    raise
                _log.exception("unexpected error in %s", method)
                context.abort(grpc.StatusCode.INTERNAL, "service internal error")

        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def metadata_value(context: grpc.ServicerContext, key: str) -> str | None:
    """A request header as visible ASCII, or None (spec §1.5)."""
    for k, v in context.invocation_metadata() or ():
        if k == key:
            if isinstance(v, bytes) or not v.isascii() or not v.isprintable():
                return None
            return str(v)
    return None


def build_server(
    *,
    max_message_bytes: int,
    max_workers: int = 256,
    interceptors: Sequence[grpc.ServerInterceptor] = (),
) -> grpc.Server:
    hard_cap = max_message_bytes * 2 + 1024 * 1024
    return grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rpc"),
        interceptors=[ErrorInterceptor(max_message_bytes), *interceptors],
        options=[
            ("grpc.max_receive_message_length", hard_cap),
            ("grpc.max_send_message_length", hard_cap),
            ("grpc.so_reuseport", 0),
        ],
    )
