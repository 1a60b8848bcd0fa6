"""The management service: functions, files, tasks and the task state machine."""

from ._common import Context
from ._files import FUSION_BASE, validate_crypto_info
from ._functions import CODE_REVIEW_MODES, EXECUTOR_TYPES, FunctionSpecInput
from ._review import PendingTask, ReviewedFile, TaskReview
from ._service import Management
from ._tasks import CANCELED_EARLY, CANCELED_LATE, EXECUTORS

__all__ = [
    "CANCELED_EARLY",
    "CANCELED_LATE",
    "CODE_REVIEW_MODES",
    "EXECUTORS",
    "EXECUTOR_TYPES",
    "FUSION_BASE",
    "Context",
    "FunctionSpecInput",
    "Management",
    "PendingTask",
    "ReviewedFile",
    "TaskReview",
    "validate_crypto_info",
]
