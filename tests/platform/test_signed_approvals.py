"""Signed approvals enforced by the worker, and its signed receipts (issue 15).

Three parties with Ed25519 keys (a function owner, a data owner who creates the
task, a data owner who receives the output) approve a task by signing its
statement. Then every field the statement covers is changed *directly in the
database* with valid row MACs (the node's record key, as a malicious control
plane holds it): the worker refuses each one before it fetches or decrypts any
input, and says why. The receipt of the task that ran verifies offline; one
with any byte changed does not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from confide.attestation import TrustBundle
from confide.client import (
    Client,
    ClientError,
    FunctionArgument,
    FunctionFile,
    ReceiptError,
    TaskStatus,
    verify_receipt,
)
from confide.client._attested import TrustInputs, trust_from_bundle
from confide.crypto.approvals import public_key_bytes, sign_digest
from confide.crypto.records import RecordSealer
from confide.node import open_root_secret
from confide.services._records import FileRecord, FunctionRecord, TaskRecord
from confide.storage import Database

from ._helpers import expect_error
from ._server import Server

PY_COPY = b"""
def entrypoint(argv):
    data = teaclave_open('in', 'rb').read()
    with teaclave_open('out', 'wb') as f:
        f.write(data)
    return 'copied %d bytes' % len(data)
"""


@dataclass
class Party:
    user_id: str
    client: Client
    key: Ed25519PrivateKey


@dataclass
class World:
    server: Server
    owner: Party  # the function owner (a participant: the function is private)
    alice: Party  # input owner and task creator
    bob: Party  # output owner
    function_id: str
    measurement: bytes
    trust: TrustInputs
    db: Database


def _party(server: Server, role: str, attribute: str = "") -> Party:
    uid, client = server.new_user(role, attribute)
    key = Ed25519PrivateKey.generate()
    info = client.register_signing_key(key)
    assert info.public_key == public_key_bytes(key.public_key()) and info.fingerprint
    return Party(uid, client, key)


@pytest.fixture(scope="module")
def world(server: Server) -> Iterator[World]:
    owner = _party(server, "FunctionOwner")
    alice = _party(server, "DataOwner", "bank-a")
    bob = _party(server, "DataOwner", "bank-b")
    fid = owner.client.register_function(
        "copy", executor_type="python", payload=PY_COPY, public=False,
        user_allowlist=["bank-a"], inputs=[FunctionFile("in")], outputs=[FunctionFile("out")],
        arguments=[FunctionArgument("rows")])
    trust = trust_from_bundle(TrustBundle.load(server.data_dir))
    entry = trust.enclave_info.for_service("teaclave_execution_service")
    assert entry is not None
    secret = open_root_secret(server.data_dir, create=False)
    db = Database(f"sqlite:///{server.data_dir / 'confide.db'}",
                  RecordSealer(secret.derive("record-seal", 32)))
    yield World(server, owner, alice, bob, fid, bytes.fromhex(entry["mr_enclave"]), trust, db)
    db.close()
    for p in (owner, alice, bob):
        p.client.close()


@dataclass
class Prepared:
    task_id: str
    input_id: str
    output: object
    digest: bytes


def _prepare(w: World, *, sign: bool = True, groups: list[tuple[str, int, list[str]]] | None
             = None, not_after: int = 0, data: bytes = b"ledger rows") -> Prepared:
    a, b = w.alice, w.bob
    upload = a.client.upload_encrypted(data, file_name="in.bin")
    iid = a.client.register_upload(upload)
    out = b.client.new_output(file_name="out.bin")
    tid = a.client.create_task(w.function_id, {"rows": "all"}, executor="mesapy",
                               inputs_ownership={"in": [a.user_id]},
                               outputs_ownership={"out": [b.user_id]})
    a.client.set_approval_policy(tid, measurements=[w.measurement], groups=groups or [],
                                 not_after=not_after)
    a.client.assign_data(tid, inputs={"in": iid})
    b.client.assign_data(tid, outputs={"out": out.data_id})
    digest = b""
    if sign:
        for p in (w.owner, a, b):
            digest = p.client.sign_approval(tid, p.key, allowed_measurements=[w.measurement])
    return Prepared(tid, iid, out, digest)


def _refused(w: World, tid: str) -> str:
    w.alice.client.invoke_task(tid)
    task = w.alice.client.wait(tid, 30)
    # Teaclave's shape: a task that ran and failed is Finished with an Err result.
    assert task.status == TaskStatus.FINISHED and task.ok is False, task
    return task.reason


def test_three_parties_sign_and_the_receipt_verifies_offline(world: World, tmp_path: Path
                                                             ) -> None:
    w = world
    p = _prepare(w)
    assert w.alice.client.get_task(p.task_id).status == TaskStatus.APPROVED
    w.alice.client.invoke_task(p.task_id)
    task = w.alice.client.wait(p.task_id, 60)
    assert task.status == TaskStatus.FINISHED, task
    _owners, cmac = w.bob.client.get_output_file(p.output.data_id)  # type: ignore[attr-defined]
    assert w.bob.client.download_decrypted(p.output, cmac) == b"ledger rows"  # type: ignore
    raw = w.bob.client.get_receipt(p.task_id)
    now = dt.datetime.now(dt.UTC)
    receipt = verify_receipt(raw, w.trust, now=now, approved_digest=p.digest,
                             output_cmacs={"out": cmac}, task_id=p.task_id)
    assert receipt.body.outcome == "ok" and len(receipt.body.approvals) == 3
    # Any byte changed anywhere in the receipt (body, signature or evidence): refused.
    step = max(1, len(raw) // 400)
    for i in range(0, len(raw), step):
        tampered = raw[:i] + bytes([raw[i] ^ 0x01]) + raw[i + 1:]
        with pytest.raises(ReceiptError):
            verify_receipt(tampered, w.trust, now=now, approved_digest=p.digest,
                           output_cmacs={"out": cmac}, task_id=p.task_id)
    # What I did not approve, or did not download, does not match it.
    with pytest.raises(ReceiptError, match="another statement"):
        verify_receipt(raw, w.trust, now=now, approved_digest=bytes(32))
    with pytest.raises(ReceiptError, match="output out"):
        verify_receipt(raw, w.trust, now=now, output_cmacs={"out": bytes(16)})


def _tamper_task(w: World, tid: str, change: Callable[[TaskRecord], None]) -> None:
    with w.db.write() as txn:
        task = TaskRecord.load(txn, tid, lock=True)
        assert task is not None
        change(task)
        task.save(txn)  # a valid MAC: the node's own record key


def _tamper_file(w: World, fid: str, change: Callable[[FileRecord], None]) -> None:
    with w.db.write() as txn:
        record = FileRecord.load(txn, fid, lock=True)
        assert record is not None
        change(record)
        record.save(txn)


def _args(t: TaskRecord) -> None:
    t.function_arguments = '{"rows":"some"}'


def _drop_participant(t: TaskRecord) -> None:
    t.participants = [u for u in t.participants if u in t.assigned_inputs.values()
                      or u == t.creator]


def _bad_signature(t: TaskRecord) -> None:
    uid = sorted(t.signatures)[0]
    t.signatures[uid] = bytes([t.signatures[uid][0] ^ 1]) + t.signatures[uid][1:]


def _later_expiry(t: TaskRecord) -> None:
    assert t.approval_policy is not None
    t.approval_policy.not_after += 3600


def _other_measurement(t: TaskRecord) -> None:
    assert t.approval_policy is not None
    t.approval_policy.measurements = [*t.approval_policy.measurements, b"\x01" * 32]


TASK_TAMPERS: dict[str, Callable[[TaskRecord], None]] = {
    "arguments": _args,
    "participants": _drop_participant,
    "signature": _bad_signature,
    "expiry": _later_expiry,
    "measurements": _other_measurement,
}


@pytest.mark.parametrize("field", sorted(TASK_TAMPERS))
def test_worker_refuses_task_row_tampered_after_signing(world: World, field: str) -> None:
    p = _prepare(world)
    _tamper_task(world, p.task_id, TASK_TAMPERS[field])
    reason = _refused(world, p.task_id)
    assert reason.startswith("approvals refused by the worker"), reason


def test_worker_refuses_input_swapped_for_another_file(world: World) -> None:
    p = _prepare(world)
    other = world.alice.client.register_upload(
        world.alice.client.upload_encrypted(b"other rows", file_name="x.bin"))
    _tamper_task(world, p.task_id, lambda t: t.assigned_inputs.update({"in": other}))
    assert _refused(world, p.task_id).startswith("approvals refused by the worker")


def test_worker_refuses_input_cmac_changed_before_fetching_it(world: World) -> None:
    p = _prepare(world)
    _tamper_file(world, p.input_id, lambda f: setattr(f, "cmac", bytes(16)))
    # The gate runs before staging: the reason is the approvals, not the cmac check.
    assert _refused(world, p.task_id).startswith("approvals refused by the worker")


def test_worker_refuses_output_owners_changed(world: World) -> None:
    p = _prepare(world)
    _tamper_file(world, p.output.data_id,  # type: ignore[attr-defined]
                 lambda f: setattr(f, "owners", [world.alice.user_id]))
    assert _refused(world, p.task_id).startswith("approvals refused by the worker")


def test_worker_refuses_function_code_changed(world: World) -> None:
    p = _prepare(world)
    with world.db.write() as txn:
        function = FunctionRecord.load(txn, world.function_id, lock=True)
        assert function is not None
        saved = function.payload
        function.payload = saved + b"\nimport os\n"
        function.save(txn)
    try:
        assert _refused(world, p.task_id).startswith("approvals refused by the worker")
    finally:
        with world.db.write() as txn:
            function = FunctionRecord.load(txn, world.function_id, lock=True)
            assert function is not None
            function.payload = saved
            function.save(txn)


def test_worker_refuses_a_substituted_signing_key(world: World) -> None:
    """The control plane swaps bob's key for its own and signs for him: alice's and the
    owner's signatures cover bob's real key, so the statement the worker rebuilds fails."""
    p = _prepare(world)
    mallory = Ed25519PrivateKey.generate()
    bob = world.bob.user_id
    with world.db.write() as txn:
        row = txn.get("users", bob, lock=True)
        assert row is not None
        real = row.body["signing_key"]
        txn.update("users", bob, {**row.body, "signing_key": public_key_bytes(
            mallory.public_key())})
    try:
        statement, _ = world.bob.client.approval_statement(p.task_id)
        _tamper_task(world, p.task_id, lambda t: t.signatures.update(
            {bob: sign_digest(mallory, statement.digest())}))
        assert _refused(world, p.task_id).startswith("approvals refused by the worker")
    finally:
        with world.db.write() as txn:
            row = txn.get("users", bob, lock=True)
            assert row is not None
            txn.update("users", bob, {**row.body, "signing_key": real})


def test_two_of_three_officers_sign_for_their_bank(world: World) -> None:
    w = world
    officers = [_party(w.server, "DataOwner", "bank-b") for _ in range(3)]
    p = _prepare(w, sign=False, groups=[(w.bob.user_id, 2, [o.user_id for o in officers])])
    for party in (w.owner, w.alice, officers[0]):
        party.client.sign_approval(p.task_id, party.key, allowed_measurements=[w.measurement])
    assert w.alice.client.get_task(p.task_id).status == TaskStatus.DATA_ASSIGNED
    expect_error("UNKNOWN", None, lambda: w.alice.client.invoke_task(p.task_id))
    officers[2].client.sign_approval(p.task_id, officers[2].key)
    assert w.alice.client.get_task(p.task_id).status == TaskStatus.APPROVED
    w.alice.client.invoke_task(p.task_id)
    assert w.alice.client.wait(p.task_id, 60).status == TaskStatus.FINISHED
    # bob himself is not a signer of this task: the group signs for him. His SDK
    # refuses to sign, and the server refuses a signature he sends anyway.
    expect_error("STATEMENT_REFUSED", None,
                 lambda: w.bob.client.sign_approval(p.task_id, w.bob.key))
    from confide.rpc._gen import confide_v1_pb2 as v1

    c = w.bob.client
    request = v1.SignApprovalRequest(task_id=p.task_id, digest=p.digest or bytes(32),
                                     signature=sign_digest(w.bob.key, p.digest or bytes(32)))
    expect_error("PERMISSION_DENIED", None, lambda: c._call(c._ext.SignApproval, request))


def test_expired_approvals_are_refused_by_the_worker(world: World) -> None:
    w = world
    p = _prepare(w, not_after=int(dt.datetime.now(dt.UTC).timestamp()) + 2)
    import time

    time.sleep(3)
    reason = _refused(w, p.task_id)
    assert "expired" in reason, reason


def test_revoke_before_invoke_blocks_the_task(world: World) -> None:
    w = world
    p = _prepare(w)
    w.bob.client.revoke_approval(p.task_id)
    assert w.alice.client.get_task(p.task_id).status == TaskStatus.DATA_ASSIGNED
    expect_error("UNKNOWN", None, lambda: w.alice.client.invoke_task(p.task_id))


def test_reject_blocks_a_signed_task(world: World) -> None:
    w = world
    p = _prepare(w)
    w.bob.client.reject_task(p.task_id, "not this quarter")
    expect_error("UNKNOWN", None, lambda: w.alice.client.invoke_task(p.task_id))


def test_unsigned_approval_does_not_count_on_a_signed_task(world: World) -> None:
    p = _prepare(world, sign=False)
    err = expect_error("FAILED_PRECONDITION", None,
                       lambda: world.bob.client.approve_task(p.task_id))
    assert "signed approvals" in str(err)


def test_signer_refuses_a_statement_that_does_not_name_its_key(world: World) -> None:
    p = _prepare(world, sign=False)
    other = Ed25519PrivateKey.generate()
    err = expect_error("STATEMENT_REFUSED", None,
                       lambda: world.bob.client.sign_approval(p.task_id, other))
    assert "my signing key" in str(err)
    err = expect_error("STATEMENT_REFUSED", None, lambda: world.bob.client.sign_approval(
        p.task_id, world.bob.key, allowed_measurements=[bytes(32)]))
    assert "measurements" in str(err)


def test_server_refuses_a_signature_over_another_statement(world: World) -> None:
    p = _prepare(world, sign=False)
    statement, _ = world.bob.client.approval_statement(p.task_id)
    digest = hashlib.sha256(b"something else").digest()
    from confide.rpc._gen import confide_v1_pb2 as v1

    c = world.bob.client
    stale = v1.SignApprovalRequest(task_id=p.task_id, digest=digest,
                                   signature=sign_digest(world.bob.key, digest))
    expect_error("FAILED_PRECONDITION", None, lambda: c._call(c._ext.SignApproval, stale))
    forged = v1.SignApprovalRequest(task_id=p.task_id, digest=statement.digest(),
                                    signature=os.urandom(64))
    expect_error("INVALID_ARGUMENT", None, lambda: c._call(c._ext.SignApproval, forged))


def test_stranger_cannot_read_keys_statement_or_receipt(world: World) -> None:
    p = _prepare(world, sign=False)
    _, stranger = world.server.new_user("DataOwner", "elsewhere")
    with stranger:
        for call in (lambda: stranger.signing_keys(p.task_id),
                     lambda: stranger.approval_statement(p.task_id),
                     lambda: stranger.get_receipt(p.task_id),
                     lambda: stranger.revoke_approval(p.task_id)):
            expect_error("PERMISSION_DENIED", None, call)


def test_co_participants_see_each_others_fingerprints(world: World) -> None:
    p = _prepare(world, sign=False)
    keys = {k.user_id: k for k in world.bob.client.signing_keys(p.task_id)}
    assert set(keys) == {world.owner.user_id, world.alice.user_id, world.bob.user_id}
    assert keys[world.alice.user_id].public_key == public_key_bytes(
        world.alice.key.public_key())
    # Registrations (and replacements) are in the audit log.
    with world.server.admin() as admin:
        entries = admin.query_audit_logs("register_signing_key", limit=1000)
    logged = " ".join(f"{e.user} {e.message}" for e in entries)
    assert world.alice.user_id in logged and world.bob.user_id in logged, logged[:2000]


def test_teaclave_style_unsigned_task_still_runs(world: World) -> None:
    """No policy: ApproveTask counts, the worker runs it, and a receipt says so."""
    w = world
    upload = w.alice.client.upload_encrypted(b"plain task", file_name="in.bin")
    iid = w.alice.client.register_upload(upload)
    out = w.alice.client.new_output(file_name="o.bin")
    tid = w.alice.client.create_task(w.function_id, {"rows": "x"}, executor="mesapy",
                                     inputs_ownership={"in": [w.alice.user_id]},
                                     outputs_ownership={"out": [w.alice.user_id]})
    w.alice.client.assign_data(tid, inputs={"in": iid}, outputs={"out": out.data_id})
    w.alice.client.approve_task(tid)
    w.owner.client.approve_task(tid)
    w.alice.client.invoke_task(tid)
    assert w.alice.client.wait(tid, 60).status == TaskStatus.FINISHED
    receipt = verify_receipt(w.alice.client.get_receipt(tid), w.trust,
                             now=dt.datetime.now(dt.UTC), task_id=tid)
    assert receipt.body.statement_digest == b""
    with pytest.raises(ReceiptError, match="another statement"):
        verify_receipt(w.alice.client.get_receipt(tid), w.trust,
                       now=dt.datetime.now(dt.UTC), approved_digest=bytes(32))


def test_function_policy_makes_new_tasks_require_signatures(world: World) -> None:
    w = world
    fid = w.owner.client.register_function(
        "copy", executor_type="python", payload=PY_COPY, public=False,
        user_allowlist=["bank-a"], inputs=[FunctionFile("in")], outputs=[FunctionFile("out")])
    w.owner.client.set_function_approval_policy(fid, True)
    tid = w.alice.client.create_task(fid, {}, executor="mesapy",
                                     inputs_ownership={"in": [w.alice.user_id]},
                                     outputs_ownership={"out": [w.bob.user_id]})
    err = expect_error("FAILED_PRECONDITION", None, lambda: w.alice.client.approve_task(tid))
    assert "signed approvals" in str(err)
    with pytest.raises(ClientError):
        w.alice.client.set_function_approval_policy(fid, False)  # not the owner


def test_fusion_chain_links_receipts(world: World) -> None:
    """Task 2 consumes task 1's output: its receipt lists that output's cmac as an input."""
    w = world
    a = w.alice.client
    fid = w.owner.client.register_function(
        "copy", executor_type="python", payload=PY_COPY, public=True,
        inputs=[FunctionFile("in")], outputs=[FunctionFile("out")])
    now = dt.datetime.now(dt.UTC)

    def run(input_id: str) -> tuple[str, object]:
        out = a.new_output(file_name="o.bin")
        tid = a.create_task(fid, {}, executor="mesapy", inputs_ownership={"in": [w.alice.user_id]},
                            outputs_ownership={"out": [w.alice.user_id]})
        a.assign_data(tid, inputs={"in": input_id}, outputs={"out": out.data_id})
        a.invoke_task(tid)
        assert a.wait(tid, 60).ok is True
        return tid, out

    first, out1 = run(a.register_upload(a.upload_encrypted(b"stage one", file_name="i.bin")))
    second, _ = run(a.register_input_from_output(out1.data_id))  # type: ignore[attr-defined]
    unrelated, _ = run(a.register_upload(a.upload_encrypted(b"other", file_name="u.bin")))
    r1 = verify_receipt(a.get_receipt(first), w.trust, now=now)
    r3 = verify_receipt(a.get_receipt(unrelated), w.trust, now=now)
    verify_receipt(a.get_receipt(second), w.trust, now=now, chained_from=[r1])
    with pytest.raises(ReceiptError, match="consumed no output"):
        verify_receipt(a.get_receipt(second), w.trust, now=now, chained_from=[r3])


def test_receipt_still_verifies_a_year_later_but_not_before_it_was_made(world: World) -> None:
    """The evidence is appraised as of when the worker signed: expired collateral later
    does not void an old receipt; a verifier whose clock is before the receipt refuses it."""
    w = world
    p = _prepare(w)
    w.alice.client.invoke_task(p.task_id)
    assert w.alice.client.wait(p.task_id, 60).ok is True
    raw = w.alice.client.get_receipt(p.task_id)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=365)
    verify_receipt(raw, w.trust, now=later, approved_digest=p.digest)
    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with pytest.raises(ReceiptError, match="claims to end"):
        verify_receipt(raw, w.trust, now=earlier)
