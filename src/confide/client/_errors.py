"""The SDK's errors: every gRPC failure becomes one ClientError, once."""

from __future__ import annotations

import grpc

from ..errors import Violation
from ..rpc._rich_status import detail_from_trailer

__all__ = ["ClientError", "Violation", "from_rpc_error"]


class ClientError(Exception):
    """A call failed. ``code`` is the gRPC status name (e.g. ``PERMISSION_DENIED``).

    ``message`` is the server's text (Teaclave's, for Teaclave's RPCs). A
    confide server says more beside it: ``reason`` (a stable name of the
    cause, e.g. ``NOT_APPROVED``; empty when the server sent none),
    ``violations`` (each wrong field and why) and ``hint`` (what to do).
    ``str(error)`` includes all of it.
    """

    def __init__(self, code: str, message: str, *, reason: str = "",
                 violations: tuple[Violation, ...] = (), hint: str = "") -> None:
        self.code = code
        self.message = message
        self.reason = reason
        self.violations = violations
        self.hint = hint
        super().__init__(self.describe())

    def describe(self) -> str:
        """``CODE: message`` then one line per violation and the hint."""
        lines = [f"{self.code}: {self.message}"]
        lines += [f"  {v.field}: {v.description}" for v in self.violations]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


def from_rpc_error(e: grpc.RpcError) -> ClientError:
    code = e.code() if hasattr(e, "code") else None
    details = e.details() if hasattr(e, "details") else str(e)
    trailer = e.trailing_metadata() if hasattr(e, "trailing_metadata") else None
    detail = detail_from_trailer(trailer)
    name = code.name if code is not None else "UNKNOWN"
    if detail is None:
        return ClientError(name, details or "")
    return ClientError(name, details or "", reason=detail.reason,
                       violations=detail.violations, hint=detail.hint)
