"""The key service: node enrolment (challenge, appraisal, grant of the platform secret)."""

from ._service import Appraise, KeyService, NonceBook

__all__ = ["Appraise", "KeyService", "NonceBook"]
