"""The key service: node enrolment (challenge, appraisal, grant of the platform secret),
and the rotation of the platform's long-lived keys (the keyring in the database)."""

from ._rotation import RING_META_KEY, KeyRotation, ResealReport, parse_duration
from ._service import Appraise, KeyService, NonceBook

__all__ = ["RING_META_KEY", "Appraise", "KeyRotation", "KeyService", "NonceBook",
           "ResealReport", "parse_duration"]
