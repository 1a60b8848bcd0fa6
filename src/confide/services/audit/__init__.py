"""The audit log: durable, hash-chained, searchable."""

from ._log import AuditChainBroken, AuditEntry, AuditLog, QuerySyntaxError

__all__ = ["AuditChainBroken", "AuditEntry", "AuditLog", "QuerySyntaxError"]
