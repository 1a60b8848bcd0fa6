"""A signed task in two calls through the SDK over the network (issue 15's cost target):
confide.v1 CreateTask with the policy returns the statement, SignApproval with ``invoke``
signs and invokes. The statement is checked on the client before anything is signed;
the server refuses a stale one and a non-creator's invoke, and invokes nothing then.
Teaclave's CreateTask is unchanged beside it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from confide.attestation import TrustBundle
from confide.client import TaskStatus, verify_receipt
from confide.client._attested import TrustInputs, trust_from_bundle
from confide.crypto.approvals import sign_digest
from confide.rpc._gen import confide_v1_pb2 as v1
from confide.rpc._gen import teaclave_frontend_service_pb2 as pb

from ._helpers import echo_function, expect_error
from ._server import Server
from .test_signed_approvals import Party, _party


@dataclass
class World:
    server: Server
    owner: Party  # owns the private echo (a participant of its tasks)
    alice: Party  # creates tasks
    bob: Party  # another data owner
    private_fid: str
    public_fid: str
    measurement: bytes
    trust: TrustInputs


@pytest.fixture(scope="module")
def world(server: Server) -> Iterator[World]:
    owner = _party(server, "FunctionOwner")
    alice = _party(server, "DataOwner", "fast-a")
    bob = _party(server, "DataOwner", "fast-b")
    private = echo_function(owner.client, public=False, user_allowlist=["fast-a"])
    public = echo_function(owner.client)
    trust = trust_from_bundle(TrustBundle.load(server.data_dir))
    entry = trust.enclave_info.for_service("teaclave_execution_service")
    assert entry is not None
    yield World(server, owner, alice, bob, private, public, bytes.fromhex(entry["mr_enclave"]),
                trust)
    for s in (owner, alice, bob):
        s.client.close()


def _create(w: World, fid: str, **kw: object) -> tuple[str, object]:
    return w.alice.client.create_signed_task(  # type: ignore[arg-type]
        fid, {"message": "fast"}, executor="builtin", measurements=[w.measurement], **kw)


def test_create_then_sign_and_invoke_runs_the_task_and_the_receipt_verifies(world: World
                                                                            ) -> None:
    w = world
    tid, statement = w.alice.client.create_signed_task(
        w.public_fid, {"message": "fast"}, executor="builtin", measurements=[w.measurement])
    assert statement is not None and statement.task_id == tid
    assert w.alice.client.get_task(tid).status == TaskStatus.CREATED  # not approved yet
    digest = w.alice.client.sign_approval(tid, w.alice.key, statement=statement, invoke=True,
                                          allowed_measurements=[w.measurement])
    assert digest == statement.digest()
    task = w.alice.client.wait(tid, 60)
    assert task.status == TaskStatus.FINISHED and task.return_value == b"fast", task
    receipt = verify_receipt(w.alice.client.get_receipt(tid), w.trust,
                             now=dt.datetime.now(dt.UTC), approved_digest=digest, task_id=tid)
    assert len(receipt.body.approvals) == 1
    with w.server.admin() as admin:
        logged = " ".join(e.message for e in admin.query_audit_logs(
            "create_signed_task OR sign_and_invoke_task", limit=1000))
    assert "create_signed_task" in logged and "sign_and_invoke_task" in logged


def test_the_creator_invokes_with_the_last_signature(world: World) -> None:
    w = world
    tid, statement = w.alice.client.create_signed_task(
        w.private_fid, {"message": "two"}, executor="builtin", measurements=[w.measurement])
    assert statement is not None
    w.owner.client.sign_approval(tid, w.owner.key)  # fetches the statement itself
    w.alice.client.sign_approval(tid, w.alice.key, statement=statement, invoke=True)
    assert w.alice.client.wait(tid, 60).return_value == b"two"


def test_the_returned_statement_is_checked_here_before_signing(world: World) -> None:
    w = world
    tid, statement = w.alice.client.create_signed_task(
        w.public_fid, {"message": "x"}, executor="builtin", measurements=[w.measurement])
    assert statement is not None
    c = w.alice.client
    err = expect_error("STATEMENT_REFUSED", None, lambda: c.sign_approval(
        tid, w.alice.key, statement=statement, invoke=True, allowed_measurements=[bytes(32)]))
    assert "measurements" in str(err)
    other = dataclasses.replace(statement, task_id="task-00000000-0000-0000-0000-000000000000")
    err = expect_error("STATEMENT_REFUSED", None, lambda: c.sign_approval(
        tid, w.alice.key, statement=other, invoke=True))
    assert "of task" in str(err)
    expect_error("STATEMENT_REFUSED", None, lambda: c.sign_approval(
        tid, Ed25519PrivateKey.generate(), statement=statement, invoke=True))
    assert c.approval_statement(tid)[1] == []  # nothing was sent
    assert c.get_task(tid).status == TaskStatus.CREATED


def test_a_stale_statement_is_refused_and_nothing_is_invoked(world: World) -> None:
    w = world
    tid, statement = w.alice.client.create_signed_task(
        w.public_fid, {"message": "x"}, executor="builtin", measurements=[w.measurement])
    assert statement is not None
    later = int(dt.datetime.now(dt.UTC).timestamp()) + 7200
    w.alice.client.set_approval_policy(tid, measurements=[w.measurement], not_after=later)
    err = expect_error("FAILED_PRECONDITION", None, lambda: w.alice.client.sign_approval(
        tid, w.alice.key, statement=statement, invoke=True))
    assert err.reason == "STALE_STATEMENT"
    assert w.alice.client.get_task(tid).status == TaskStatus.CREATED
    assert w.alice.client.approval_statement(tid)[1] == []


def test_only_the_creator_may_sign_and_invoke(world: World) -> None:
    w = world
    # bob signs for the function owner (a group of one): a signer, not the creator
    tid, statement = w.alice.client.create_signed_task(
        w.private_fid, {"message": "x"}, executor="builtin", measurements=[w.measurement],
        groups=[(w.owner.user_id, 1, [w.bob.user_id])])
    assert statement is not None
    assert [u for u, _k in statement.signers] == sorted([w.alice.user_id, w.bob.user_id])
    w.alice.client.sign_approval(tid, w.alice.key, statement=statement)
    err = expect_error("PERMISSION_DENIED", None, lambda: w.bob.client.sign_approval(
        tid, w.bob.key, invoke=True))
    assert err.reason == "NOT_CREATOR"
    o = w.owner.client  # a function owner has no right to invoke at all (access control)
    digest = statement.digest()
    raw = v1.SignApprovalRequest(task_id=tid, digest=digest, invoke=True,
                                 signature=sign_digest(w.owner.key, digest))
    expect_error("PERMISSION_DENIED", None, lambda: o._call(o._ext.SignApproval, raw))
    assert w.alice.client.approval_statement(tid)[1] == [w.alice.user_id]  # bob's not kept
    assert w.alice.client.get_task(tid).status == TaskStatus.CREATED
    w.bob.client.sign_approval(tid, w.bob.key)  # signing without invoke is his to do
    w.alice.client.invoke_task(tid)
    assert w.alice.client.wait(tid, 60).status == TaskStatus.FINISHED


def test_a_refused_policy_leaves_no_task(world: World) -> None:
    w = world
    before = w.alice.client.list_tasks(1000)
    err = expect_error("INVALID_ARGUMENT", None, lambda: w.alice.client.create_signed_task(
        w.private_fid, {"message": "x"}, executor="builtin", measurements=[w.measurement],
        groups=[(w.owner.user_id, 1, ["no-such-user"])]))
    assert "no user" in str(err)
    assert w.alice.client.list_tasks(1000) == before


def test_statement_pending_until_every_signer_has_a_key(world: World) -> None:
    w = world
    uid, keyless = w.server.new_user("DataOwner", "fast-c")
    keyless.close()
    tid, statement = w.alice.client.create_signed_task(
        w.private_fid, {"message": "x"}, executor="builtin", measurements=[w.measurement],
        groups=[(w.owner.user_id, 1, [uid])])
    assert statement is None
    expect_error("FAILED_PRECONDITION", None, lambda: w.alice.client.approval_statement(tid))


def test_teaclave_create_task_is_unchanged(world: World) -> None:
    """Teaclave's CreateTask makes a task without a policy: unsigned flow as before;
    confide.v1 CreateTask without a policy is the same and says there is nothing to sign."""
    w = world
    c = w.alice.client
    tid = c.create_task(w.public_fid, {"message": "plain"}, executor="builtin")
    err = expect_error("FAILED_PRECONDITION", None, lambda: c.approval_statement(tid))
    assert err.reason == "NOT_SIGNED"
    c.invoke_task(tid)
    assert c.wait(tid, 60).return_value == b"plain"
    r = c._call(c._ext.CreateTask, v1.CreateTaskRequest(task=pb.CreateTaskRequest(
        function_id=w.public_fid, function_arguments='{"message": "v1"}', executor="builtin")))
    assert r.statement == b"" and r.statement_pending.startswith("NOT_SIGNED: ")
    c.invoke_task(r.task_id)
    assert c.wait(r.task_id, 60).return_value == b"v1"
