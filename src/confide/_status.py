"""The task states of Teaclave's state machine (spec §2.1, §3.7.3), shared by
the services and the client SDK."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["TaskStatus"]


class TaskStatus(IntEnum):
    CREATED = 0
    DATA_ASSIGNED = 1
    APPROVED = 2
    STAGED = 3
    RUNNING = 4
    FINISHED = 10
    CANCELED = 20
    FAILED = 99

    @property
    def final(self) -> bool:
        return self in (TaskStatus.FINISHED, TaskStatus.CANCELED, TaskStatus.FAILED)

    @property
    def label(self) -> str:
        """Teaclave's name of the state (``DataAssigned``), as in the proto enum."""
        return "".join(part.capitalize() for part in self.name.split("_"))
