"""Typed views of confide.v1's review messages (what an approval covers)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..rpc._gen import confide_v1_pb2 as v1

__all__ = [
    "CODE_REVIEW",
    "PendingTask",
    "Rejection",
    "ReviewedFile",
    "ReviewedFunction",
    "TaskReview",
]

#: The code-review modes a function owner chooses between, and their wire values.
CODE_REVIEW = {"open": v1.CODE_REVIEW_OPEN, "confidential": v1.CODE_REVIEW_CONFIDENTIAL}
_MODE_NAMES = {value: name for name, value in CODE_REVIEW.items()}


@dataclass(frozen=True)
class ReviewedFunction:
    function_id: str
    name: str
    description: str
    owner: str
    executor_type: str
    public: bool
    code_review: str  # "open" or "confidential"
    payload_sha256: bytes
    payload_visible: bool
    payload: bytes  # empty unless payload_visible
    payload_size: int
    arguments: list[tuple[str, str, bool]]  # (key, default, overwritable)
    inputs: list[tuple[str, bool]]  # (name, optional)
    outputs: list[tuple[str, bool]]


@dataclass(frozen=True)
class ReviewedFile:
    data_name: str
    owners: list[str]
    data_id: str  # "" until assigned
    cmac: bytes  # b"" until known


@dataclass(frozen=True)
class Rejection:
    user_id: str
    reason: str


@dataclass(frozen=True)
class TaskReview:
    """Everything a participant's approval covers (``Client.review_task``)."""

    task_id: str
    creator: str
    status: int
    executor: str
    function_arguments: str  # the final argument object (JSON text, spec §3.7.1)
    function: ReviewedFunction | None  # None: the function was deleted
    inputs: list[ReviewedFile]
    outputs: list[ReviewedFile]
    participants: list[str]
    approved_users: list[str]
    waiting_for: list[str]
    rejections: list[Rejection]
    log: list[str]
    failure_detail: str

    @classmethod
    def from_proto(cls, r: v1.TaskReview) -> TaskReview:
        function = None
        if r.HasField("function"):
            f = r.function
            function = ReviewedFunction(
                f.function_id, f.name, f.description, f.owner, f.executor_type, f.public,
                _MODE_NAMES.get(f.code_review, "confidential"), bytes(f.payload_sha256),
                f.payload_visible, bytes(f.payload), int(f.payload_size),
                [(a.key, a.default_value, a.allow_overwrite) for a in f.arguments],
                [(i.name, i.optional) for i in f.inputs],
                [(o.name, o.optional) for o in f.outputs])

        def files(items: Iterable[v1.ReviewedFile]) -> list[ReviewedFile]:
            return [ReviewedFile(x.data_name, list(x.owners), x.data_id, bytes(x.cmac))
                    for x in items]

        t = r.task
        return cls(
            task_id=t.task_id, creator=t.creator, status=int(t.status), executor=r.executor,
            function_arguments=t.function_arguments, function=function,
            inputs=files(r.inputs), outputs=files(r.outputs),
            participants=list(t.participants), approved_users=list(t.approved_users),
            waiting_for=list(r.waiting_for),
            rejections=[Rejection(x.user_id, x.reason) for x in r.rejections],
            log=list(r.log), failure_detail=r.failure_detail)


@dataclass(frozen=True)
class PendingTask:
    """A task that waits for my approval (``Client.pending_tasks``)."""

    task_id: str
    creator: str
    function_id: str
    function_name: str
    status: int
    unassigned: list[str]  # data still to assign before anyone can approve
