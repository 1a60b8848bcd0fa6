"""``google.rpc.Status`` in the ``grpc-status-details-bin`` trailer: the detail
of a :class:`~confide.errors.ServiceError` beside Teaclave's message text.

Server side: :func:`status_trailer` (used by the error interceptor). Client
side: :func:`detail_from_trailer` (used by the SDK). The Status carries an
``ErrorInfo`` (domain ``confide``, the detail's reason), a ``BadRequest`` (the
violations) and, when there is a hint, a ``LocalizedMessage`` with it.
Teaclave's clients never read this trailer.
"""

from __future__ import annotations

from collections.abc import Iterable

import google.rpc.error_details_pb2 as error_details_pb2
import google.rpc.status_pb2 as status_pb2
from google.protobuf import any_pb2

from ..errors import ErrorDetail, Violation

__all__ = ["DETAILS_KEY", "DOMAIN", "MAX_DETAILS_BYTES", "detail_from_trailer", "status_trailer"]

DETAILS_KEY = "grpc-status-details-bin"
DOMAIN = "confide"
#: Largest trailer a client parses (a server's is far smaller).
MAX_DETAILS_BYTES = 64 * 1024


def status_trailer(code: int, message: str, detail: ErrorDetail) -> tuple[tuple[str, bytes]]:
    """The trailing metadata that carries ``detail`` (code and message repeated)."""
    status = status_pb2.Status(code=code, message=message)
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=detail.reason, domain=DOMAIN))
    status.details.append(info)
    if detail.violations:
        bad = any_pb2.Any()
        bad.Pack(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in detail.violations]))
        status.details.append(bad)
    if detail.hint:
        hint = any_pb2.Any()
        hint.Pack(error_details_pb2.LocalizedMessage(locale="en-US", message=detail.hint))
        status.details.append(hint)
    return ((DETAILS_KEY, status.SerializeToString()),)


def detail_from_trailer(metadata: Iterable[tuple[str, str | bytes]] | None) -> ErrorDetail | None:
    """The detail a confide server sent, or None (no trailer, a foreign or bad one)."""
    for key, value in metadata or ():
        if key != DETAILS_KEY or not isinstance(value, bytes) or len(value) > MAX_DETAILS_BYTES:
            continue
        status = status_pb2.Status()
        try:
            status.ParseFromString(value)
        except Exception:  # noqa: BLE001 - a malformed trailer is ignored, not fatal
            return None
        reason, hint, violations = "", "", []
        for item in status.details:
            info = error_details_pb2.ErrorInfo()
            bad = error_details_pb2.BadRequest()
            text = error_details_pb2.LocalizedMessage()
            if item.Unpack(info) and info.domain == DOMAIN:
                reason = info.reason
            elif item.Unpack(bad):
                violations += [Violation(v.field, v.description) for v in bad.field_violations]
            elif item.Unpack(text):
                hint = text.message
        if not reason:
            return None
        return ErrorDetail(reason, tuple(violations), hint)
    return None
