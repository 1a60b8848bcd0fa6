"""The SDK's errors: every gRPC failure becomes one ClientError, once."""

from __future__ import annotations

import grpc

__all__ = ["ClientError", "from_rpc_error"]


class ClientError(Exception):
    """A call failed. ``code`` is the gRPC status name (e.g. ``PERMISSION_DENIED``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def from_rpc_error(e: grpc.RpcError) -> ClientError:
    code = e.code() if hasattr(e, "code") else None
    details = e.details() if hasattr(e, "details") else str(e)
    return ClientError(code.name if code is not None else "UNKNOWN", details or "")
