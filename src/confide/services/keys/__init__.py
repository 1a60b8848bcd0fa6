"""The key service: node enrolment (challenge, appraisal, grant of the platform secret),
the operator's node revocations, and the rotation of the platform's long-lived keys
(the keyring in the database)."""

from ._revocations import NodeRevocations, Revocation, RevocationError
from ._rotation import RING_META_KEY, KeyRotation, ResealReport, parse_duration
from ._service import Appraise, KeyService, NonceBook

__all__ = ["RING_META_KEY", "Appraise", "KeyRotation", "KeyService", "NodeRevocations",
           "NonceBook", "ResealReport", "Revocation", "RevocationError", "parse_duration"]
