"""The scheduler service: staged-task queue, executor liveness, cancel, timeouts."""

from ._agreement import AgreementError, SchedulerAgreement
from ._scheduler import EXECUTOR_TIMEOUT_REASON, STALE_EXECUTOR, Command, Scheduler

__all__ = ["EXECUTOR_TIMEOUT_REASON", "STALE_EXECUTOR", "AgreementError", "Command",
           "Scheduler", "SchedulerAgreement"]
