"""The key service: node enrolment (challenge, appraisal, grant of the platform secret)
and the operator's node revocations."""

from ._revocations import NodeRevocations, Revocation, RevocationError
from ._service import Appraise, KeyService, NonceBook

__all__ = ["Appraise", "KeyService", "NodeRevocations", "NonceBook", "Revocation",
           "RevocationError"]
