"""Execution workers: stage a task's data, run its function, seal outputs, report."""

from ._runner import Outcome, TaskRunner
from ._staging import StagedIO, Stager

__all__ = ["Outcome", "StagedIO", "Stager", "TaskRunner"]
