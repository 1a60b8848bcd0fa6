"""What ``confide``'s exit status means (docs/cli.md), and the one place errors map to it.

===  ==========================================================================
0    success
1    usage: a bad command line (unknown option, bad JSON, bad hex, a missing
     ``=``, an unreadable key file) or a request the server found malformed
     (an unknown argument, executor or data slot, an input over a cap)
2    not found or not allowed: an unknown id, permission denied, not logged in,
     a failed login
3    the server, the network or attestation failed; data that does not verify
4    refused in the current state: not everyone approved, a rejection stands,
     data not assigned, already approved or invoked, quota used up
5    ``task wait``: the task ended without success (or did not end in time)
===  ==========================================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..client import ClientError

__all__ = ["DENIED", "OK", "REFUSED", "SERVER", "TASK_FAILED", "USAGE", "exit_code"]

OK, USAGE, DENIED, SERVER, REFUSED, TASK_FAILED = 0, 1, 2, 3, 4, 5

_BY_REASON = {
    USAGE: {"UNKNOWN_ARGUMENT", "MISSING_ARGUMENT", "UNKNOWN_EXECUTOR", "UNKNOWN_EXECUTOR_TYPE",
            "BAD_ARGUMENTS_JSON", "WRONG_DATA_NAMES", "UNKNOWN_DATA_NAME", "INPUT_TOO_LARGE",
            "OWNERS_MISMATCH"},
    REFUSED: {"NOT_APPROVED", "REJECTED", "DATA_NOT_ASSIGNED", "WRONG_STATE", "ALREADY_ASSIGNED",
              "OUTPUT_USED"},
    DENIED: {"NOT_DATA_OWNER", "NOT_CREATOR", "NOT_FUNCTION_OWNER", "UNKNOWN_DATA"},
}
_BY_CODE = {
    "OUT_OF_RANGE": USAGE,
    "PERMISSION_DENIED": DENIED,
    "UNAUTHENTICATED": DENIED,
    "NOT_FOUND": DENIED,
    "UNKNOWN": REFUSED,  # Teaclave's state errors ("failed to invoke task", quota)
    "FAILED_PRECONDITION": REFUSED,
}


def exit_code(error: ClientError) -> int:
    """The exit status for a failed call: by the server's reason, else by its code."""
    for code, reasons in _BY_REASON.items():
        if error.reason in reasons:
            return code
    if error.code == "INVALID_ARGUMENT":
        # Teaclave answers an unknown id with 3 "invalid ... id": that is "not found".
        return DENIED if error.message.startswith("invalid ") and error.message.endswith(
            " id") else USAGE
    if error.code == "INTERNAL":
        # Teaclave answers malformed input with 13 and its parser's text; a storage
        # failure is "service internal error".
        return SERVER if error.message == "service internal error" else USAGE
    return _BY_CODE.get(error.code, SERVER)
