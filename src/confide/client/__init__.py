"""confide's Python SDK: attest a server, then call it (the CLI is ``confide.cli``)."""

from ._attested import AttestedEndpoint, ServerAttestationError
from ._audit import AuditProofError, ParticipantAudit, ParticipantAuditEntry, SignedTreeHead
from ._endpoints import Endpoint
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
from ._signed import ReceiptError, SigningKeyInfo, verify_receipt

__all__ = [
    "AttestedEndpoint",
    "AuditEntry",
    "AuditProofError",
    "BlobUrls",
    "Client",
    "ClientError",
    "EncryptedFile",
    "Endpoint",
    "FunctionArgument",
    "FunctionFile",
    "OutputLocation",
    "ParticipantAudit",
    "ParticipantAuditEntry",
    "PendingTask",
    "ProbeError",
    "ReceiptError",
    "Rejection",
    "ReviewedFile",
    "ReviewedFunction",
    "ServerAttestationError",
    "SignedTreeHead",
    "SigningKeyInfo",
    "Task",
    "TaskReview",
    "TaskStatus",
    "Violation",
    "health_status",
    "verify_receipt",
]
