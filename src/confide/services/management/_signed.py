"""Signed approvals on the control plane (confide.v1; docs/signed-approvals.md).

Participant keys (registered public keys, kept on the user's MAC-protected
row), task and function policies, the statement signers sign, signing,
revoking and receipts. The control plane checks signatures early only so that
a bad one is refused at once; the worker is the one that enforces them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ...crypto.approvals import (
    ApprovalError,
    ApprovalStatement,
    fingerprint,
    verify_signature,
)
from ...errors import Code, ServiceError, Violation
from ...storage import Txn
from .._approval import build_statement, signer_keys
from .._idempotency import IdempotencyKey
from .._identity import Principal
from .._records import (
    ApprovalPolicy,
    FileRecord,
    FunctionRecord,
    TaskRecord,
    TaskStatus,
    parse_id,
    signing_key_of,
)
from ._common import Context
from ._tasks import DataOwners, Stage, Tasks, not_creator

__all__ = ["DEFAULT_VALIDITY_S", "CreatedTask", "PolicyRequest", "SignedApprovals",
           "SigningKey"]

#: Default lifetime of a task's approvals when its policy names no expiry.
DEFAULT_VALIDITY_S = 24 * 3600
_KEY_LEN = 32
_SIG_LEN = 64
_MAX_MEASUREMENT = 64


@dataclass(frozen=True)
class SigningKey:
    user_id: str
    public_key: bytes
    registered_at: int

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)


@dataclass(frozen=True)
class PolicyRequest:
    """A task's signed-approval policy as a creator asks for it (SetApprovalPolicy).

    ``groups``: (participant, k, members); ``not_after`` 0 means a day from now;
    ``measurements``: the worker measurements allowed to run the task (required).
    """

    groups: Sequence[tuple[str, int, Sequence[str]]]
    not_after: int
    measurements: Sequence[bytes]


@dataclass(frozen=True)
class CreatedTask:
    """confide.v1 CreateTask's answer: the task, and its statement if it can be built now.

    ``statement`` is None while something is missing (data to assign, a signer's
    key, a policy); ``pending`` then says what (a reason and a sentence).
    """

    task_id: str
    statement: ApprovalStatement | None
    pending: str = ""


def _precondition(reason: str, field: str, text: str, message: str) -> ServiceError:
    return ServiceError(Code.FAILED_PRECONDITION, message).with_detail(reason,
                                                                       Violation(field, text))


class SignedApprovals:
    def __init__(self, ctx: Context, tasks: Tasks) -> None:
        self._ctx = ctx
        self._tasks = tasks

    # -- keys --------------------------------------------------------------
    def register_key(self, who: Principal, public_key: bytes) -> SigningKey:
        """Register (or replace) the caller's Ed25519 public key."""
        if len(public_key) != _KEY_LEN:
            raise ServiceError(Code.INVALID_ARGUMENT, "a signing key is a raw Ed25519 public key "
                               f"of {_KEY_LEN} bytes; got {len(public_key)}")
        now = int(self._ctx.clock())
        with self._ctx.db.write() as txn:
            row = txn.get("users", who.user_id, lock=True)
            if row is None:
                raise ServiceError.permission_denied()
            txn.update("users", who.user_id, {**row.body, "signing_key": bytes(public_key),
                                              "signing_key_at": now})
        return SigningKey(who.user_id, bytes(public_key), now)

    def keys(self, who: Principal, task_id: str) -> list[SigningKey]:
        """The caller's own key (no task), or those of a task's signers (its participants)."""
        with self._ctx.db.read() as txn:
            if not task_id:
                users = [who.user_id]
            else:
                task = self._task(txn, who, task_id)
                policy = task.approval_policy or ApprovalPolicy()
                users = sorted({*task.participants, *policy.signers(task.participants)})
            out = []
            for uid in users:
                row = txn.get("users", uid)
                key = signing_key_of(txn, uid)
                if row is not None and key is not None:
                    out.append(SigningKey(uid, key, int(row.body.get("signing_key_at", 0))))
        return out

    # -- policies ----------------------------------------------------------
    def set_function_policy(self, who: Principal, function_id: str, require: bool) -> None:
        fid = parse_id(function_id)
        with self._ctx.db.write() as txn:
            function = FunctionRecord.load(txn, fid, lock=True) if fid else None
            if function is None:
                raise ServiceError(Code.INVALID_ARGUMENT, "invalid function id")
            if function.owner != who.user_id:
                raise ServiceError.permission_denied()
            function.require_signed = require
            function.save(txn)

    def set_task_policy(self, who: Principal, task_id: str,
                        groups: Sequence[tuple[str, int, Sequence[str]]], not_after: int,
                        measurements: Sequence[bytes]) -> None:
        """The creator sets the policy before anyone approved; it binds every signer."""
        policy = self._checked(PolicyRequest(groups, not_after, measurements))
        with self._ctx.db.write() as txn:
            task = self._task(txn, who, task_id, lock=True)
            if task.creator != who.user_id:
                raise ServiceError.permission_denied()
            if task.status.value >= TaskStatus.APPROVED.value or task.approved_users \
                    or task.signatures:
                raise _precondition("WRONG_STATE", "task", "the policy is set before anyone "
                                    "approves", "task policy cannot change")
            self._apply(txn, task, policy)
            task.updated_at = self._ctx.clock()
            task.save(txn)

    def create_task(self, who: Principal, function_id: str, arguments_json: str,
                    executor: str, inputs_ownership: Sequence[DataOwners],
                    outputs_ownership: Sequence[DataOwners], policy: PolicyRequest | None,
                    idem: IdempotencyKey | None = None) -> CreatedTask:
        """Teaclave's CreateTask and SetApprovalPolicy in one transaction (confide.v1).

        A policy that is refused leaves no task. The statement to sign comes
        back when it can be built at once (no data to assign, every signer has a
        key); the signer still checks it on their side before signing it.
        """
        checked = None if policy is None else self._checked(policy)
        made: list[CreatedTask] = []

        def extend(txn: Txn, task: TaskRecord) -> None:
            if checked is not None:
                self._apply(txn, task, checked)
            made.append(self._created(txn, task))

        tid = self._tasks.create(who, function_id, arguments_json, executor, inputs_ownership,
                                 outputs_ownership, idem=idem, extend=extend)
        return made[0] if made else self.created(who, tid)

    def created(self, who: Principal, task_id: str) -> CreatedTask:
        """What :meth:`create_task` answers, for a task made already (an idempotent retry)."""
        with self._ctx.db.read() as txn:
            return self._created(txn, self._task(txn, who, task_id))

    def _created(self, txn: Txn, task: TaskRecord) -> CreatedTask:
        try:
            return CreatedTask(task.id, self._statement(txn, task))
        except ServiceError as e:
            if e.code is not Code.FAILED_PRECONDITION:
                raise
            reason = e.detail.reason if e.detail is not None else "NOT_READY"
            why = "; ".join(v.description for v in e.detail.violations) if e.detail else ""
            return CreatedTask(task.id, None, f"{reason}: {why or e.message}")

    def _checked(self, policy: PolicyRequest) -> ApprovalPolicy:
        """The request's policy, checked as far as it can be without the task."""
        lim = self._ctx.limits
        groups, measurements = policy.groups, policy.measurements
        if len(groups) > lim.max_list_items or len(measurements) > lim.max_list_items:
            raise ServiceError(Code.OUT_OF_RANGE, "too many groups or measurements")
        if not measurements:
            raise ServiceError(Code.INVALID_ARGUMENT, "list the worker measurements allowed to "
                               "run the task (enclave_info's MRENCLAVE)")
        if any(not 0 < len(m) <= _MAX_MEASUREMENT for m in measurements):
            raise ServiceError(Code.INVALID_ARGUMENT, "a measurement is 1-64 bytes")
        now = int(self._ctx.clock())
        not_after = policy.not_after or now + DEFAULT_VALIDITY_S
        if not_after <= now:
            raise ServiceError(Code.INVALID_ARGUMENT, "the expiry is in the past")
        clean: list[tuple[str, int, list[str]]] = []
        for name, k, members in groups:
            members = sorted(set(members))
            if len(members) > lim.max_list_items or not 1 <= k <= len(members):
                raise ServiceError(Code.INVALID_ARGUMENT, f"group {name[:80]}: k must be "
                                   f"1..{len(members)}")
            clean.append((name, int(k), members))
        if len({n for n, _k, _m in clean}) != len(clean):
            raise ServiceError(Code.INVALID_ARGUMENT, "a participant has two groups")
        return ApprovalPolicy(clean, not_after, sorted({bytes(m) for m in measurements}))

    def _apply(self, txn: Txn, task: TaskRecord, policy: ApprovalPolicy) -> None:
        """Set ``policy`` on ``task``: each group names a participant and existing users."""
        for name, _k, members in policy.groups:
            if name not in task.participants:
                raise ServiceError(Code.INVALID_ARGUMENT, f"group {name[:80]!r} names no "
                                   "participant of the task")
            for m in members:
                if txn.get("users", m) is None:
                    raise ServiceError(Code.INVALID_ARGUMENT, f"group {name[:80]}: no user "
                                       f"{m[:80]!r}")
        task.approval_policy = policy

    # -- statement, signing, revoking -----------------------------------------
    def statement(self, who: Principal, task_id: str) -> tuple[ApprovalStatement, list[str]]:
        """The statement a signer signs, and who signed it so far."""
        with self._ctx.db.read() as txn:
            task = self._task(txn, who, task_id)
            return self._statement(txn, task), sorted(task.signatures)

    def sign(self, who: Principal, task_id: str, digest: bytes, signature: bytes, *,
             invoke: Stage | None = None) -> None:
        """Record the caller's signature over the task's statement ``digest``.

        With ``invoke`` (the scheduler's stage; the creator only) the task is
        invoked in the same transaction: if it cannot be (another signature
        is missing, a rejection stands), nothing is recorded.
        """
        if len(signature) != _SIG_LEN or len(digest) != 32:
            raise ServiceError(Code.INVALID_ARGUMENT, "a signature is 64 bytes over a 32-byte "
                               "digest")
        with self._ctx.db.write() as txn:
            task = self._task(txn, who, task_id, lock=True)
            if invoke is not None and task.creator != who.user_id:
                raise not_creator()
            policy = task.approval_policy
            if policy is None or who.user_id not in policy.signers(task.participants):
                raise ServiceError.permission_denied()
            if task.status not in (TaskStatus.CREATED, TaskStatus.DATA_ASSIGNED,
                                   TaskStatus.APPROVED) or not task.all_data_assigned():
                raise _precondition("WRONG_STATE", "task", f"the task is {task.status.label}; "
                                    "approvals are signed once all data is assigned and "
                                    "before it runs", "failed to approve task")
            statement = self._statement(txn, task)
            if statement.digest() != digest:
                raise _precondition("STALE_STATEMENT", "digest", "the task changed since the "
                                    "statement was fetched: fetch it again",
                                    "the signed statement is not the task's")
            if int(self._ctx.clock()) > statement.not_after:
                raise _precondition("EXPIRED", "not_after", "the approvals' expiry passed",
                                    "approval expired")
            key = statement.key_of(who.user_id)
            try:
                verify_signature(key or b"", digest, signature)
            except ApprovalError as e:
                raise ServiceError(Code.INVALID_ARGUMENT, "the signature does not verify under "
                                   "your registered signing key").with_detail(
                    "BAD_SIGNATURE", Violation("signature", str(e))) from e
            task.rejections.pop(who.user_id, None)
            task.signatures[who.user_id] = bytes(signature)
            if who.user_id in task.participants and who.user_id not in task.approved_users:
                task.approved_users = sorted({*task.approved_users, who.user_id})
            self._advance(task)
            if invoke is None:
                task.save(txn)
            else:
                self._tasks.invoke_loaded(txn, who, task, invoke)
        if invoke is not None:
            self._ctx.notifier.work_available()

    def revoke(self, who: Principal, task_id: str) -> None:
        """Withdraw the caller's approval (signed or not) before the task is staged."""
        with self._ctx.db.write() as txn:
            task = self._task(txn, who, task_id, lock=True)
            if task.status.value >= TaskStatus.STAGED.value:
                raise _precondition("WRONG_STATE", "task", f"the task is {task.status.label}: "
                                    "approvals are revoked before it runs",
                                    "approval cannot be revoked")
            task.signatures.pop(who.user_id, None)
            task.approved_users = [u for u in task.approved_users if u != who.user_id]
            self._advance(task)
            task.save(txn)

    def receipt(self, who: Principal, task_id: str) -> bytes:
        with self._ctx.db.read() as txn:
            task = self._task(txn, who, task_id)
        if task.result is None or not task.result.receipt:
            raise ServiceError(Code.NOT_FOUND, "the task has no receipt (it has not ended, or "
                               "it ended before a worker ran it)")
        return task.result.receipt

    # -- helpers -----------------------------------------------------------
    def _advance(self, task: TaskRecord) -> None:
        task.updated_at = self._ctx.clock()
        if task.status in (TaskStatus.DATA_ASSIGNED, TaskStatus.APPROVED):
            task.status = TaskStatus.APPROVED if task.everyone_approved() and \
                not task.rejections else TaskStatus.DATA_ASSIGNED

    def _task(self, txn: Txn, who: Principal, task_id: str, *, lock: bool = False) -> TaskRecord:
        tid = parse_id(task_id)
        task = TaskRecord.load(txn, tid, lock=lock) if tid and tid.startswith("task-") else None
        if task is None:
            raise ServiceError(Code.INVALID_ARGUMENT, "invalid task id")
        policy = task.approval_policy
        members = policy.signers(task.participants) if policy is not None else []
        if who.user_id not in task.participants and who.user_id not in members:
            raise ServiceError.permission_denied()
        return task

    def _statement(self, txn: Txn, task: TaskRecord) -> ApprovalStatement:
        if task.approval_policy is None:
            raise _precondition("NOT_SIGNED", "task", "the task has no signed-approval policy; "
                                "approve it with ApproveTask", "task requires no signatures")
        if not task.approval_policy.measurements:
            raise _precondition("NO_POLICY", "task", "the function requires signed approvals: "
                                "the task's creator sets the policy first (confide task "
                                "policy)", "task policy not set")
        if not task.all_data_assigned():
            raise _precondition("WRONG_STATE", "task", "assign all data before the statement "
                                "can be built", "data not assigned")
        function = FunctionRecord.load(txn, task.function_id)
        if function is None:
            raise ServiceError(Code.INVALID_ARGUMENT, "invalid function id")
        files: dict[str, FileRecord] = {}
        for fid in [*task.assigned_inputs.values(), *task.assigned_outputs.values()]:
            record = FileRecord.load(txn, fid)
            if record is None:
                raise ServiceError(Code.INVALID_ARGUMENT, "invalid data id")
            files[fid] = record
        return build_statement(task, function, files, signer_keys(txn, task))
