"""The management service: functions, files and tasks behind one facade."""

from __future__ import annotations

from collections.abc import Callable

from .._identity import Principal, Role
from ..audit import Subjects
from ._audit import audit_visibility
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
        self.signed = SignedApprovals(ctx, self.tasks)
        self.role_of = role_of

    def audit_visibility(self, who: Principal) -> Callable[[str, Subjects], bool]:
        """Which audit entries ``who`` may see as a participant (``_audit``)."""
        return audit_visibility(self.ctx, who)
