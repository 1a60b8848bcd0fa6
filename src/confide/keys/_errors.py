"""The error hierarchy of ``confide.keys``.

Every error raised by this package is a :class:`KeysError`; each carries a
short machine-readable ``reason``.
"""

from __future__ import annotations

__all__ = [
    "EnrolmentError",
    "KeysError",
    "PeerNotAllowedError",
    "SealingError",
]


class KeysError(Exception):
    """Base of every error raised by ``confide.keys``.

    Attributes:
        reason: a stable, machine-readable code such as ``"nonce-replayed"``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


class SealingError(KeysError):
    """Sealed data could not be unsealed (wrong key, tampered, wrong context) or sealed."""


class EnrolmentError(KeysError):
    """A node's enrolment was refused (replay, binding, appraisal, malformed request)."""


class PeerNotAllowedError(KeysError):
    """The calling node's certificate names no service allowed to call this service."""
