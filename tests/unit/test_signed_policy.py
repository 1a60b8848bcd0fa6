"""Signed-approval rules on the service layer (no gRPC): who may set which policy, what a
signature must be, and that the statement the control plane shows signers is exactly the
one the worker rebuilds from the staged task."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from confide.crypto.approvals import public_key_bytes, sign_digest
from confide.errors import Code
from confide.execution._approval import ApprovalGate, statement_of
from confide.services._identity import Principal
from confide.services._records import TaskStatus

from ._services import (
    ALICE,
    BOB,
    FUNCTION_OWNER,
    MALLORY,
    Platform,
    ThreeParties,
    platform,
    refused,
    three_party_task,
)

MEASUREMENT = b"\x05" * 32
KEYS = {u: Ed25519PrivateKey.generate() for u in ("alice", "bob", "fo", "mallory", "o1", "o2")}


@pytest.fixture
def p(tmp_path: Path) -> Platform:
    plat = platform(tmp_path)
    with plat.db.write() as txn:
        for uid in KEYS:
            txn.insert("users", uid, {"hash": "", "role": "DataOwner", "gen": 0})
    for uid, key in KEYS.items():
        plat.management.signed.register_key(Principal(uid, ALICE.role),
                                            public_key_bytes(key.public_key()))
    return plat


def _policy(p: Platform, t: ThreeParties, **kw: object) -> None:
    args: dict[str, object] = {"groups": [], "not_after": 0, "measurements": [MEASUREMENT]}
    args.update(kw)
    p.management.signed.set_task_policy(ALICE, t.task_id, **args)  # type: ignore[arg-type]


def _sign(p: Platform, who: Principal, tid: str) -> None:
    statement, _ = p.management.signed.statement(who, tid)
    p.management.signed.sign(who, tid, statement.digest(),
                             sign_digest(KEYS[who.user_id], statement.digest()))


def test_signing_key_must_be_a_raw_ed25519_key(p: Platform) -> None:
    with refused(Code.INVALID_ARGUMENT):
        p.management.signed.register_key(ALICE, b"\x01" * 31)


@pytest.mark.parametrize(("kw", "code"), [
    ({"measurements": []}, Code.INVALID_ARGUMENT),
    ({"not_after": 1}, Code.INVALID_ARGUMENT),
    ({"groups": [("bob", 0, ["o1", "o2"])]}, Code.INVALID_ARGUMENT),
    ({"groups": [("bob", 3, ["o1", "o2"])]}, Code.INVALID_ARGUMENT),
    ({"groups": [("mallory", 1, ["o1"])]}, Code.INVALID_ARGUMENT),  # not a participant
    ({"groups": [("bob", 1, ["nobody"])]}, Code.INVALID_ARGUMENT),  # no such user
])
def test_bad_policies_are_refused(p: Platform, kw: dict[str, object], code: Code) -> None:
    t = three_party_task(p)
    with refused(code):
        _policy(p, t, **kw)


def test_only_the_creator_sets_the_policy_and_only_before_approvals(p: Platform) -> None:
    t = three_party_task(p)
    with refused(Code.PERMISSION_DENIED):
        p.management.signed.set_task_policy(BOB, t.task_id, [], 0, [MEASUREMENT])
    p.management.tasks.approve(BOB, t.task_id)
    with refused(Code.FAILED_PRECONDITION):
        _policy(p, t)


def test_stale_or_foreign_signatures_are_refused(p: Platform) -> None:
    t = three_party_task(p)
    _policy(p, t)
    statement, _ = p.management.signed.statement(BOB, t.task_id)
    with refused(Code.FAILED_PRECONDITION):  # a digest of another statement
        p.management.signed.sign(BOB, t.task_id, bytes(32), sign_digest(KEYS["bob"], bytes(32)))
    with refused(Code.INVALID_ARGUMENT):  # signed with another key
        p.management.signed.sign(BOB, t.task_id, statement.digest(),
                                 sign_digest(KEYS["mallory"], statement.digest()))
    with refused(Code.PERMISSION_DENIED):
        p.management.signed.statement(MALLORY, t.task_id)


def test_the_worker_rebuilds_exactly_the_statement_signers_signed(p: Platform) -> None:
    t = three_party_task(p)
    _policy(p, t, groups=[("bob", 1, ["o1", "o2"])])
    for who in (ALICE, FUNCTION_OWNER):
        _sign(p, who, t.task_id)
    assert p.task(t.task_id).status is TaskStatus.DATA_ASSIGNED
    _sign(p, Principal("o2", BOB.role), t.task_id)
    assert p.task(t.task_id).status is TaskStatus.APPROVED
    shown, signed_by = p.management.signed.statement(ALICE, t.task_id)
    assert signed_by == ["alice", "fo", "o2"]
    p.invoke(ALICE, t.task_id)
    staged = p.pull("worker-1")
    assert staged is not None and staged.approval is not None
    assert statement_of(staged) == shown
    approved = ApprovalGate(MEASUREMENT, lambda: p.clock()).check(staged)
    assert approved is not None and approved.digest == shown.digest()
    with refused(Code.FAILED_PRECONDITION):  # too late to revoke
        p.management.signed.revoke(BOB, t.task_id)


def test_unsigned_approve_is_refused_on_a_signed_task(p: Platform) -> None:
    t = three_party_task(p)
    _policy(p, t)
    with refused(Code.FAILED_PRECONDITION):
        p.management.tasks.approve(BOB, t.task_id)
