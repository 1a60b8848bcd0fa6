"""Signed approvals on PostgreSQL: keys on the users' rows, the policy and signatures on the
task row, the staged approval in the queue row, round-trip and verify in the worker's gate."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from confide.config import Limits
from confide.crypto.approvals import public_key_bytes, sign_digest
from confide.crypto.records import RecordSealer
from confide.execution._approval import ApprovalGate, statement_of
from confide.services._identity import Principal
from confide.services._notify import Notifier
from confide.services._records import TaskStatus
from confide.services.management import Context, Management
from confide.services.scheduler import Scheduler
from confide.storage import Database
from tests.unit._auth_support import Clock
from tests.unit._services import ALICE, BOB, FUNCTION_OWNER, Platform, three_party_task

MEASUREMENT = b"\x05" * 32


def _platform(db: Database, clock: Clock) -> Platform:
    notifier = Notifier()
    return Platform(db, clock, notifier,
                    Management(Context(db, notifier, Limits(), clock), role_of=lambda _u: None),
                    Scheduler(db, notifier, clock=clock, executor_timeout_s=30.0))


def test_signed_task_round_trips_through_postgres(pg_url: str) -> None:
    db = Database(pg_url, RecordSealer(os.urandom(32)))
    try:
        clock = Clock()
        p = _platform(db, clock)
        keys = {u: Ed25519PrivateKey.generate() for u in ("alice", "bob", "fo")}
        with db.write() as txn:
            for uid in keys:
                txn.insert("users", uid, {"hash": "", "role": "DataOwner", "gen": 0})
        for uid, key in keys.items():
            p.management.signed.register_key(Principal(uid, ALICE.role),
                                             public_key_bytes(key.public_key()))
        t = three_party_task(p)
        p.management.signed.set_task_policy(ALICE, t.task_id, [], 0, [MEASUREMENT])
        for who in (ALICE, BOB, FUNCTION_OWNER):
            statement, _ = p.management.signed.statement(who, t.task_id)
            p.management.signed.sign(who, t.task_id, statement.digest(),
                                     sign_digest(keys[who.user_id], statement.digest()))
        assert p.task(t.task_id).status is TaskStatus.APPROVED
        p.invoke(ALICE, t.task_id)
        staged = p.pull("worker-pg")
        assert staged is not None and staged.approval is not None
        assert statement_of(staged) == statement
        assert ApprovalGate(MEASUREMENT, clock).check(staged) is not None
    finally:
        db.close()


def test_create_with_policy_and_sign_and_invoke_on_postgres(pg_url: str) -> None:
    """The two-call flow's transactions (create+policy, sign+invoke) on PostgreSQL's locks;
    a refused policy rolls the create back there too."""
    import pytest

    from confide.errors import ServiceError
    from confide.services.management import PolicyRequest
    from tests.unit.test_signed_fastpath import KEYS, _echo

    db = Database(pg_url, RecordSealer(os.urandom(32)))
    try:
        clock = Clock()
        p = _platform(db, clock)
        with db.write() as txn:
            for uid in KEYS:
                txn.insert("users", uid, {"hash": "", "role": "DataOwner", "gen": 0})
        for uid, key in KEYS.items():
            p.management.signed.register_key(Principal(uid, ALICE.role),
                                             public_key_bytes(key.public_key()))
        fid = _echo(p, public=True)
        args = '{"message": "hi"}'
        with pytest.raises(ServiceError, match="no user"):
            p.management.signed.create_task(ALICE, fid, args, "builtin", [], [], PolicyRequest(
                [("alice", 1, ["nobody"])], 0, [MEASUREMENT]))
        assert p.management.tasks.list_for(ALICE, 10) == []
        made = p.management.signed.create_task(ALICE, fid, args, "builtin", [], [],
                                               PolicyRequest([], 0, [MEASUREMENT]))
        assert made.statement is not None
        digest = made.statement.digest()
        p.management.signed.sign(ALICE, made.task_id, digest,
                                 sign_digest(KEYS["alice"], digest), invoke=p.scheduler.stage)
        assert p.task(made.task_id).status is TaskStatus.STAGED
        staged = p.pull("worker-pg")
        assert staged is not None and statement_of(staged) == made.statement
        assert ApprovalGate(MEASUREMENT, clock).check(staged) is not None
    finally:
        db.close()
