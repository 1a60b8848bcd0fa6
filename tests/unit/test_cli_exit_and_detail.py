"""The CLI's exit statuses map from the server's cause first, then the gRPC code; the
rich-status trailer round-trips and a malformed one is ignored (never fatal)."""

from __future__ import annotations

from confide.cli import _exit
from confide.client import ClientError
from confide.errors import ErrorDetail, Violation
from confide.rpc._rich_status import DETAILS_KEY, detail_from_trailer, status_trailer


def test_exit_statuses_follow_the_documented_table() -> None:
    cases = [
        (ClientError("INVALID_ARGUMENT", "invalid task", reason="UNKNOWN_ARGUMENT"), _exit.USAGE),
        (ClientError("INTERNAL", "Unsupported executor: python", reason="UNKNOWN_EXECUTOR"),
         _exit.USAGE),
        (ClientError("INTERNAL", "Invalid crypto schema: x"), _exit.USAGE),  # Teaclave server
        (ClientError("INTERNAL", "service internal error"), _exit.SERVER),
        (ClientError("INVALID_ARGUMENT", "invalid task id"), _exit.DENIED),
        (ClientError("PERMISSION_DENIED", "permission denied"), _exit.DENIED),
        (ClientError("PERMISSION_DENIED", "permission denied", reason="UNKNOWN_DATA_NAME"),
         _exit.USAGE),
        (ClientError("UNKNOWN", "failed to invoke task", reason="NOT_APPROVED"), _exit.REFUSED),
        (ClientError("UNKNOWN", "function quota has been used up"), _exit.REFUSED),
        (ClientError("UNAVAILABLE", "cannot reach"), _exit.SERVER),
        (ClientError("DATA_LOSS", "does not verify"), _exit.SERVER),
        (ClientError("UNAUTHENTICATED", "authentication failed"), _exit.DENIED),
    ]
    for error, code in cases:
        assert _exit.exit_code(error) == code, error


def test_detail_trailer_round_trips() -> None:
    detail = ErrorDetail("NOT_APPROVED", (Violation("approvals.bob", "bob has not approved"),),
                         hint="waiting for approval from: bob")
    trailer = status_trailer(2, "failed to invoke task", detail)
    assert detail_from_trailer(trailer) == detail


def test_malformed_or_foreign_trailers_are_ignored() -> None:
    assert detail_from_trailer([(DETAILS_KEY, b"\xff\x00garbage")]) is None
    assert detail_from_trailer([(DETAILS_KEY, b"x" * (64 * 1024 + 1))]) is None
    assert detail_from_trailer([("other", b"")]) is None
    assert detail_from_trailer(None) is None
