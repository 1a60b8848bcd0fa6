"""The audit log: durable, hash-chained, searchable."""

from ...crypto.audit_proof import TreeHead, rfc3339
from ._log import (
    AuditChainBroken,
    AuditEntry,
    AuditLog,
    ParticipantView,
    QuerySyntaxError,
    Subjects,
)

__all__ = ["AuditChainBroken", "AuditEntry", "AuditLog", "ParticipantView", "QuerySyntaxError",
           "Subjects", "TreeHead", "rfc3339"]
