"""The management service: functions, files, tasks and the task state machine."""

from ._common import Context
from ._files import FUSION_BASE, validate_crypto_info
from ._functions import CODE_REVIEW_MODES, FunctionLists, FunctionSpecInput, UsageStats
from ._review import PendingTask, ReviewedFile, TaskReview
from ._service import Management
from ._signed import CreatedTask, PolicyRequest, SignedApprovals, SigningKey
from ._tasks import CANCELED_EARLY, CANCELED_LATE, DataAssignment, DataOwners, Stage, Unstage

__all__ = [
    "CANCELED_EARLY",
    "CANCELED_LATE",
    "CODE_REVIEW_MODES",
    "FUSION_BASE",
    "Context",
    "CreatedTask",
    "DataAssignment",
    "DataOwners",
    "FunctionLists",
    "FunctionSpecInput",
    "Management",
    "PendingTask",
    "PolicyRequest",
    "ReviewedFile",
    "SignedApprovals",
    "SigningKey",
    "Stage",
    "TaskReview",
    "Unstage",
    "UsageStats",
    "validate_crypto_info",
]
