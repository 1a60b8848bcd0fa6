"""Which audit entries a participant may see (issue 13 item 9; docs/security.md).

A caller sees an entry when it is about them (their own calls and logins), or
when it names a task they take part in (creator, data owner, function owner:
the task's participants), a function they own or a file they own. Nothing
else: not other users' logins, not tasks they are not in, not others' files.
"""

from __future__ import annotations

from collections.abc import Callable

from .._identity import Principal
from .._records import FileRecord, FunctionRecord, TaskRecord, parse_id
from ..audit import Subjects
from ._common import Context

__all__ = ["audit_visibility"]


def audit_visibility(ctx: Context, who: Principal) -> Callable[[str, Subjects], bool]:
    """A predicate over entries for ``who``; looks records up once per query."""
    me = who.user_id
    seen: dict[tuple[str, str], bool] = {}

    def mine(kind: str, raw_id: str) -> bool:
        key = (kind, raw_id)
        if key not in seen:
            rid = parse_id(raw_id)
            found = False
            if rid is not None:
                with ctx.db.read() as txn:
                    if kind == "task":
                        task = TaskRecord.load(txn, rid)
                        found = task is not None and me in task.participants
                    elif kind == "function":
                        function = FunctionRecord.load(txn, rid)
                        found = function is not None and function.owner == me
                    else:
                        file = FileRecord.load(txn, rid)
                        found = file is not None and me in file.owners
            seen[key] = found
        return seen[key]

    def visible(actor: str, s: Subjects) -> bool:
        return (actor == me
                or any(mine("task", t) for t in s.tasks)
                or any(mine("function", f) for f in s.functions)
                or any(mine("file", f) for f in s.files))

    return visible
