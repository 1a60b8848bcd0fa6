"""The approval statement of a task as the control plane builds it.

Management shows it to signers (``GetApprovalStatement``) and checks
signatures early; the scheduler stages what the worker needs to recompute it
(:func:`staged_approval`). The worker recomputes the statement from the staged
task alone (``confide.execution._approval``) and is the one that enforces it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from ..crypto.approvals import ApprovalGroup, ApprovalStatement, SignedInput, SignedOutput
from ..errors import Code, ServiceError, Violation
from ..staged import StagedApproval
from ..storage import Txn
from ._records import FileRecord, FunctionRecord, TaskRecord, signing_key_of

__all__ = ["build_statement", "signer_keys", "staged_approval"]


def signer_keys(txn: Txn, task: TaskRecord) -> list[tuple[str, bytes]]:
    """Every signer's registered key; FAILED_PRECONDITION naming who has none."""
    if task.approval_policy is None:
        return []
    keys: list[tuple[str, bytes]] = []
    missing: list[str] = []
    for uid in task.approval_policy.signers(task.participants):
        key = signing_key_of(txn, uid)
        if key is None:
            missing.append(uid)
        else:
            keys.append((uid, key))
    if missing:
        raise ServiceError(Code.FAILED_PRECONDITION, "a signer has no signing key").with_detail(
            "NO_SIGNING_KEY", *(Violation(f"signers.{u}", f"{u} registered no signing key "
                                          "(confide key register)") for u in missing))
    return keys


def build_statement(task: TaskRecord, function: FunctionRecord,
                    files: Mapping[str, FileRecord],
                    keys: list[tuple[str, bytes]]) -> ApprovalStatement:
    """The statement of a task whose data is all assigned (``files`` by id)."""
    policy = task.approval_policy
    if policy is None:
        raise ValueError("the task requires no signed approvals")
    inputs = []
    for name, fid in task.assigned_inputs.items():
        record = files[fid]
        inputs.append(SignedInput(name, fid, record.cmac or b"", record.crypto.schema))
    outputs = [SignedOutput(name, fid, tuple(files[fid].owners))
               for name, fid in task.assigned_outputs.items()]
    return ApprovalStatement(
        task_id=task.id, function_id=function.id,
        code_sha256=hashlib.sha256(function.program()).digest(),
        executor_type=function.executor_type, executor=task.executor,
        function_arguments=task.function_arguments, inputs=tuple(inputs),
        outputs=tuple(outputs), participants=tuple(task.participants), signers=tuple(keys),
        groups=tuple(ApprovalGroup(n, k, tuple(m)) for n, k, m in policy.groups),
        measurements=tuple(policy.measurements), not_after=policy.not_after)


def staged_approval(txn: Txn, task: TaskRecord) -> StagedApproval | None:
    """What the worker needs beyond the staged task to check the approvals."""
    policy = task.approval_policy
    if policy is None:
        return None
    return StagedApproval(
        participants=tuple(task.participants), signers=tuple(signer_keys(txn, task)),
        groups=tuple((n, k, tuple(m)) for n, k, m in policy.groups),
        measurements=tuple(policy.measurements), not_after=policy.not_after,
        signatures=tuple(sorted(task.signatures.items())))
