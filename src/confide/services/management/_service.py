"""The management service: functions, files and tasks behind one facade."""

from __future__ import annotations

from collections.abc import Callable

from .._identity import Role
from ._common import Context
from ._files import Files
from ._functions import Functions
from ._review import Reviews
from ._signed import SignedApprovals
from ._tasks import Tasks

__all__ = ["Management"]


class Management:
    """Holds the parts (and reviews of tasks); ``role_of`` looks up a user's stored role."""

    def __init__(self, ctx: Context, role_of: Callable[[str], Role | None]) -> None:
        self.ctx = ctx
        self.functions = Functions(ctx)
        self.files = Files(ctx)
        self.tasks = Tasks(ctx)
        self.reviews = Reviews(ctx)
        self.signed = SignedApprovals(ctx)
        self.role_of = role_of
