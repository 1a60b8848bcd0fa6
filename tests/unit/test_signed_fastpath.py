"""The signed task in two calls (confide.v1 CreateTask with a policy, SignApproval with
``invoke``) on the service layer, no gRPC: create and policy are one transaction, the
statement it returns is the one a signer would fetch, and sign-and-invoke is the
creator's, refuses a stale statement and records nothing when it cannot invoke."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from confide.crypto.approvals import public_key_bytes, sign_digest
from confide.errors import Code, ServiceError
from confide.execution._approval import ApprovalGate, statement_of
from confide.services._idempotency import IdempotencyKey
from confide.services._identity import Principal
from confide.services._records import ArgumentSpec, TaskRecord, TaskStatus
from confide.services.management import (
    CreatedTask,
    DataAssignment,
    DataOwners,
    FunctionSpecInput,
    PolicyRequest,
)

from ._services import (
    ALICE,
    BOB,
    FUNCTION_OWNER,
    Platform,
    platform,
    refused,
    register_function,
    register_input,
    register_output,
)

MEASUREMENT = b"\x05" * 32
KEYS = {u: Ed25519PrivateKey.generate() for u in ("alice", "bob", "fo")}
POLICY = PolicyRequest([], 0, [MEASUREMENT])


@pytest.fixture
def p(tmp_path: Path) -> Platform:
    plat = platform(tmp_path)
    with plat.db.write() as txn:
        for uid in (*KEYS, "nokey"):
            txn.insert("users", uid, {"hash": "", "role": "DataOwner", "gen": 0})
    for uid, key in KEYS.items():
        plat.management.signed.register_key(Principal(uid, ALICE.role),
                                            public_key_bytes(key.public_key()))
    return plat


def _echo(p: Platform, *, public: bool = False) -> str:
    """A builtin echo without files: its task's statement exists at creation."""
    return p.management.functions.register(FUNCTION_OWNER, FunctionSpecInput(
        name="builtin-echo", description="", executor_type="builtin", public=public,
        payload=b"", arguments=[ArgumentSpec("message", "", True)], inputs=[], outputs=[],
        user_allowlist=["alice", "bob"], usage_quota=-1))


def _create(p: Platform, fid: str, policy: PolicyRequest | None = POLICY,
            who: Principal = ALICE, idem: IdempotencyKey | None = None) -> CreatedTask:
    return p.management.signed.create_task(who, fid, '{"message": "hi"}', "builtin", [], [],
                                           policy, idem=idem)


def _sign(p: Platform, who: Principal, tid: str, digest: bytes, *, invoke: bool) -> None:
    p.management.signed.sign(who, tid, digest, sign_digest(KEYS[who.user_id], digest),
                             invoke=p.scheduler.stage if invoke else None)


def _task_ids(p: Platform) -> list[str]:
    with p.db.read() as txn:
        return [row.id for row in txn.scan("tasks", order_by="seq")]


@contextmanager
def _refused_because(code: Code, reason: str) -> Iterator[None]:
    with pytest.raises(ServiceError) as info:
        yield
    assert info.value.code == code, info.value
    assert info.value.detail is not None and info.value.detail.reason == reason, info.value


def test_create_returns_the_statement_a_signer_would_fetch(p: Platform) -> None:
    made = _create(p, _echo(p))
    assert made.statement is not None and made.pending == ""
    fetched, signed_by = p.management.signed.statement(FUNCTION_OWNER, made.task_id)
    assert made.statement == fetched and signed_by == []
    task = p.task(made.task_id)
    assert task.approval_policy is not None
    assert task.approval_policy.measurements == [MEASUREMENT]
    assert made.statement.signers == (("alice", public_key_bytes(KEYS["alice"].public_key())),
                                      ("fo", public_key_bytes(KEYS["fo"].public_key())))


@pytest.mark.parametrize(("policy", "why"), [
    (PolicyRequest([("alice", 1, ["nobody"])], 0, [MEASUREMENT]), "no user"),
    (PolicyRequest([("mallory", 1, ["bob"])], 0, [MEASUREMENT]), "names no participant"),
    (PolicyRequest([("alice", 2, ["bob"])], 0, [MEASUREMENT]), "k must be"),
    (PolicyRequest([], 0, []), "measurements"),
    (PolicyRequest([], 1, [MEASUREMENT]), "expiry is in the past"),
])
def test_a_refused_policy_leaves_no_task_behind(p: Platform, policy: PolicyRequest,
                                                why: str) -> None:
    fid = _echo(p)
    with pytest.raises(ServiceError, match=why) as info:
        _create(p, fid, policy)
    assert info.value.code is Code.INVALID_ARGUMENT
    assert _task_ids(p) == []
    assert p.management.tasks.list_for(ALICE, 10) == []


def test_a_failing_create_sets_no_policy_either(p: Platform) -> None:
    fid = _echo(p)
    with refused(Code.PERMISSION_DENIED):  # mallory is not on the allow-list
        _create(p, fid, who=Principal("mallory", ALICE.role))
    assert _task_ids(p) == []


def test_a_policy_naming_a_group_sets_it_in_the_same_step(p: Platform) -> None:
    fid = _echo(p)
    made = _create(p, fid, PolicyRequest([("fo", 1, ["bob", "fo"])], 0, [MEASUREMENT]))
    task = p.task(made.task_id)
    assert task.approval_policy is not None
    assert task.approval_policy.groups == [("fo", 1, ["bob", "fo"])]
    assert made.statement is not None and [s for s, _k in made.statement.signers] == [
        "alice", "bob", "fo"]


def test_no_statement_until_the_data_is_assigned(p: Platform) -> None:
    fid = register_function(p)
    made = p.management.signed.create_task(
        ALICE, fid, '{"message": "hi"}', "builtin", [DataOwners("in", ["alice"])],
        [DataOwners("out", ["bob"])], POLICY)
    assert made.statement is None and made.pending.startswith("WRONG_STATE: ")
    assert p.task(made.task_id).approval_policy is not None  # the policy is set all the same
    p.management.tasks.assign(ALICE, made.task_id,
                              [DataAssignment("in", register_input(p, ALICE))], [])
    p.management.tasks.assign(BOB, made.task_id, [],
                              [DataAssignment("out", register_output(p, BOB))])
    statement, _ = p.management.signed.statement(BOB, made.task_id)
    assert statement.task_id == made.task_id


def test_a_signer_without_a_key_is_named_not_fatal(p: Platform) -> None:
    made = _create(p, _echo(p), PolicyRequest([("fo", 1, ["nokey"])], 0, [MEASUREMENT]))
    assert made.statement is None and made.pending.startswith("NO_SIGNING_KEY: ")
    assert "nokey" in made.pending
    assert p.task(made.task_id).approval_policy is not None


def test_without_a_policy_it_is_teaclaves_create(p: Platform) -> None:
    fid = _echo(p)
    made = _create(p, fid, None)
    assert made.statement is None and made.pending.startswith("NOT_SIGNED: ")
    assert p.task(made.task_id).approval_policy is None
    plain = p.management.tasks.create(ALICE, fid, '{"message": "hi"}', "builtin", [], [])
    assert p.task(plain).approval_policy is None
    p.management.tasks.approve(ALICE, plain)  # Teaclave's approval still counts there


def test_an_idempotent_retry_returns_the_first_task_and_its_statement(p: Platform) -> None:
    fid = _echo(p)
    ctx = p.management.ctx

    def key() -> IdempotencyKey:
        return IdempotencyKey.of("alice", "k" * 16, "create_signed_task", b"req", ctx.limits,
                                 ctx.clock)

    first = _create(p, fid, idem=key())
    again = _create(p, fid, idem=key())
    assert again == first and first.statement is not None
    assert _task_ids(p) == [first.task_id]


def test_sign_and_invoke_stages_the_task_in_one_step(p: Platform) -> None:
    made = _create(p, _echo(p, public=True))  # alice is the only participant
    assert made.statement is not None
    _sign(p, ALICE, made.task_id, made.statement.digest(), invoke=True)
    task = p.task(made.task_id)
    assert task.status is TaskStatus.STAGED and set(task.signatures) == {"alice"}
    staged = p.pull("worker-1")
    assert staged is not None and staged.task_id == made.task_id
    assert statement_of(staged) == made.statement
    approved = ApprovalGate(MEASUREMENT, lambda: p.clock()).check(staged)
    assert approved is not None and approved.digest == made.statement.digest()


def test_last_signer_creator_invokes_after_the_others_signed(p: Platform) -> None:
    made = _create(p, _echo(p))
    assert made.statement is not None
    _sign(p, FUNCTION_OWNER, made.task_id, made.statement.digest(), invoke=False)
    _sign(p, ALICE, made.task_id, made.statement.digest(), invoke=True)
    assert p.task(made.task_id).status is TaskStatus.STAGED


def _unchanged(p: Platform, before: TaskRecord) -> None:
    after = p.task(before.id)
    assert after.status is before.status and after.signatures == before.signatures
    assert after.approved_users == before.approved_users
    assert p.pull("worker-1") is None  # nothing was queued


def test_non_creator_cannot_sign_and_invoke(p: Platform) -> None:
    made = _create(p, _echo(p))
    assert made.statement is not None
    before = p.task(made.task_id)
    with _refused_because(Code.PERMISSION_DENIED, "NOT_CREATOR"):
        _sign(p, FUNCTION_OWNER, made.task_id, made.statement.digest(), invoke=True)
    _unchanged(p, before)  # not even the signature was kept


def test_sign_and_invoke_refuses_a_stale_statement_and_invokes_nothing(p: Platform) -> None:
    made = _create(p, _echo(p, public=True))
    assert made.statement is not None
    p.management.signed.set_task_policy(ALICE, made.task_id, [], 0, [b"\x06" * 32])
    before = p.task(made.task_id)
    with _refused_because(Code.FAILED_PRECONDITION, "STALE_STATEMENT"):
        _sign(p, ALICE, made.task_id, made.statement.digest(), invoke=True)
    _unchanged(p, before)


def test_sign_and_invoke_before_the_others_signed_records_nothing(p: Platform) -> None:
    made = _create(p, _echo(p))  # the function owner must sign too
    assert made.statement is not None
    before = p.task(made.task_id)
    with refused(Code.UNKNOWN, "failed to invoke task"):
        _sign(p, ALICE, made.task_id, made.statement.digest(), invoke=True)
    _unchanged(p, before)
    _sign(p, ALICE, made.task_id, made.statement.digest(), invoke=False)  # still possible
    assert set(p.task(made.task_id).signatures) == {"alice"}


def test_sign_and_invoke_with_a_bad_signature_invokes_nothing(p: Platform) -> None:
    made = _create(p, _echo(p, public=True))
    assert made.statement is not None
    before = p.task(made.task_id)
    digest = made.statement.digest()
    with _refused_because(Code.INVALID_ARGUMENT, "BAD_SIGNATURE"):
        p.management.signed.sign(ALICE, made.task_id, digest, sign_digest(KEYS["bob"], digest),
                                 invoke=p.scheduler.stage)
    _unchanged(p, before)


def test_signing_twice_with_invoke_is_refused_once_staged(p: Platform) -> None:
    made = _create(p, _echo(p, public=True))
    assert made.statement is not None
    _sign(p, ALICE, made.task_id, made.statement.digest(), invoke=True)
    with _refused_because(Code.FAILED_PRECONDITION, "WRONG_STATE"):
        _sign(p, ALICE, made.task_id, made.statement.digest(), invoke=True)


def test_the_signed_rpcs_run_on_the_event_loop() -> None:
    from confide.api._serving import _INLINE
    from confide.api.frontend import _Confide

    for name in ("CreateTask", "RegisterSigningKey", "GetSigningKeys", "SetApprovalPolicy",
                 "SetFunctionApprovalPolicy", "GetApprovalStatement", "SignApproval",
                 "RevokeApproval", "GetReceipt"):
        assert getattr(getattr(_Confide, name), _INLINE, False), name
    # a blocking one stays in the pool
    assert not getattr(_Confide.QueryParticipantAudit, _INLINE, False)


def test_invoke_keeps_its_own_refusals(p: Platform) -> None:
    """Tasks.invoke (InvokeTask) after the split: still the creator's, still one step."""
    made = _create(p, _echo(p, public=True))
    assert made.statement is not None
    _sign(p, ALICE, made.task_id, made.statement.digest(), invoke=False)
    with _refused_because(Code.PERMISSION_DENIED, "NOT_CREATOR"):
        p.invoke(BOB, made.task_id)
    p.invoke(ALICE, made.task_id)
    assert p.task(made.task_id).status is TaskStatus.STAGED
