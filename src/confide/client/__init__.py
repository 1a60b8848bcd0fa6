"""confide's Python SDK: attest a server, then call it (the CLI is ``confide.cli``)."""

from ._attested import AttestedEndpoint, ServerAttestationError
from ._errors import ClientError, Violation
from ._probe import ProbeError, health_status
from ._review import PendingTask, Rejection, ReviewedFile, ReviewedFunction, TaskReview
from ._sdk import (
    AuditEntry,
    BlobUrls,
    Client,
    EncryptedFile,
    FunctionArgument,
    FunctionFile,
    OutputLocation,
    Task,
    TaskStatus,
)

__all__ = [
    "AttestedEndpoint",
    "AuditEntry",
    "BlobUrls",
    "Client",
    "ClientError",
    "EncryptedFile",
    "FunctionArgument",
    "FunctionFile",
    "OutputLocation",
    "PendingTask",
    "ProbeError",
    "Rejection",
    "ReviewedFile",
    "ReviewedFunction",
    "ServerAttestationError",
    "Task",
    "TaskReview",
    "TaskStatus",
    "Violation",
    "health_status",
]
