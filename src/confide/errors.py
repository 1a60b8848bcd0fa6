"""Domain errors of the services, carrying the gRPC status a client sees.

Services raise these; one interceptor (``confide.api.ErrorInterceptor``) turns them into gRPC
statuses. Codes are numeric gRPC codes so this module does not import grpc.
The messages are Teaclave's (spec §1.7), which clients may match.

What Teaclave's texts cannot say (which argument is unknown, who has not
approved, which executors exist) travels beside them as :class:`ErrorDetail`:
the interceptor sends it as a ``google.rpc.Status`` in the
``grpc-status-details-bin`` trailer, which Teaclave's clients ignore and
confide's SDK shows (``ClientError.reason``, ``.violations``, ``.hint``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = ["Code", "ErrorDetail", "ServiceError", "Violation"]


class Code(IntEnum):
    OK = 0
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    NOT_FOUND = 5
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


@dataclass(frozen=True)
class Violation:
    """One thing wrong with a request: the field (``arguments.num_user``) and why."""

    field: str
    description: str


@dataclass(frozen=True)
class ErrorDetail:
    """Why a call failed, beyond Teaclave's text, for confide's clients.

    Attributes:
        reason: a stable UPPER_SNAKE_CASE name of the cause (``UNKNOWN_ARGUMENT``,
            ``NOT_APPROVED``, ``UNKNOWN_EXECUTOR``, …); clients may branch on it.
        violations: each wrong field and what is wrong with it.
        hint: what to do about it, in one sentence (may be empty).
    """

    reason: str
    violations: tuple[Violation, ...] = ()
    hint: str = ""


class ServiceError(Exception):
    """An error with the exact status code and message a client receives.

    ``detail`` is sent beside the message (module docstring). Never put in it
    what the caller may not see: it goes to the caller only.
    """

    def __init__(self, code: Code, message: str, detail: ErrorDetail | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail

    def __repr__(self) -> str:
        return f"ServiceError({self.code.name}, {self.message!r})"

    def with_detail(self, reason: str, *violations: Violation, hint: str = "") -> ServiceError:
        """The same status, with ``detail`` set (returns ``self``, for ``raise``)."""
        self.detail = ErrorDetail(reason, tuple(violations), hint)
        return self

    # Teaclave's frequent errors, named once.
    @classmethod
    def permission_denied(cls) -> ServiceError:
        return cls(Code.PERMISSION_DENIED, "permission denied")

    @classmethod
    def internal(cls, detail: str = "service internal error") -> ServiceError:
        return cls(Code.INTERNAL, detail)

    @classmethod
    def unknown(cls, message: str) -> ServiceError:
        return cls(Code.UNKNOWN, message)
