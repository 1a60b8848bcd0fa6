"""Domain errors of the services, carrying the gRPC status a client sees.

Services raise these; one interceptor (``confide.api.ErrorInterceptor``) turns them into gRPC
statuses. Codes are numeric gRPC codes so this module does not import grpc.
The messages are Teaclave's (spec §1.7), which clients may match.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["Code", "ServiceError"]


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
    UNAUTHENTICATED = 16


class ServiceError(Exception):
    """An error with the exact status code and message a client receives."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"ServiceError({self.code.name}, {self.message!r})"

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
