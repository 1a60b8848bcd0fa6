"""Audit for participants (issue 13 item 9): each user sees, verified, the entries of
the tasks, functions and files they take part in and their own calls and logins;
nothing else. Over the SDK against a real server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from confide.client import AuditProofError, Client, ParticipantAudit
from confide.client._audit import verify_participant_audit
from confide.rpc._gen import confide_v1_pb2 as v1

from ._helpers import expect_error, input_file, io_function
from ._server import Server

_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


@dataclass
class World:
    fo_id: str
    fo: Client
    alice_id: str
    alice: Client
    bob_id: str
    bob: Client
    function: str
    alice_task: str
    alice_file: str
    bob_task: str
    bob_file: str


@pytest.fixture(scope="module")
def world(server: Server) -> Iterator[World]:
    fo_id, fo = server.new_user("FunctionOwner", prefix="fo")
    alice_id, alice = server.new_user("DataOwner", "a", prefix="alice")
    bob_id, bob = server.new_user("DataOwner", "b", prefix="bob")
    fid = io_function(fo, ["in"], [])
    alice_file = input_file(alice)
    alice_task = alice.create_task(fid, {"message": "hi"}, executor="builtin",
                                   inputs_ownership={"in": [alice_id]})
    alice.assign_data(alice_task, inputs={"in": alice_file})
    bob_file = input_file(bob)
    bob_task = bob.create_task(fid, {"message": "ho"}, executor="builtin",
                               inputs_ownership={"in": [bob_id]})
    bob.assign_data(bob_task, inputs={"in": bob_file})
    # bob tries alice's task: refused, and alice (a participant) sees the attempt
    expect_error("PERMISSION_DENIED", None, lambda: bob.get_task(alice_task))
    w = World(fo_id, fo, alice_id, alice, bob_id, bob, fid, alice_task, alice_file, bob_task,
              bob_file)
    yield w
    for c in (fo, alice, bob):
        c.close()


def _names(view: ParticipantAudit) -> set[str]:
    return {i for e in view.entries for i in (*e.task_ids, *e.function_ids, *e.file_ids)}


def test_a_data_owner_sees_her_task_file_and_logins_verified(world: World) -> None:
    view = world.alice.participant_audit()
    assert view.entries, "no entries"
    seqs = [e.seq for e in view.entries]
    assert seqs == sorted(seqs, reverse=True)  # newest first
    assert all(e.seq <= view.tree_head.tree_size for e in view.entries)
    messages = {(e.message, e.actor) for e in view.entries}
    assert ("user_login", world.alice_id) in messages
    assert ("create_task", world.alice_id) in messages
    assert ("assign_data", world.alice_id) in messages
    assert ("register_input_file", world.alice_id) in messages
    created = next(e for e in view.entries if e.message == "create_task")
    assert created.task_ids == (world.alice_task,)
    assert created.function_ids == (world.function,)
    assign = next(e for e in view.entries if e.message == "assign_data")
    assert assign.file_ids == (world.alice_file,)
    for e in view.entries:
        assert _RFC3339.fullmatch(e.time), e.time
    # the task's function owner registered the function: not alice's entry to see
    assert not any(e.message == "register_function" for e in view.entries)


def test_a_participant_sees_an_outsiders_refused_attempt_on_her_task(world: World) -> None:
    view = world.alice.participant_audit(task_id=world.alice_task)
    attempt = [e for e in view.entries if e.actor == world.bob_id]
    assert len(attempt) == 1 and not attempt[0].result
    assert attempt[0].message.startswith("get_task:status: PermissionDenied")


def test_a_participant_does_not_see_others_tasks_files_or_logins(world: World) -> None:
    view = world.alice.participant_audit(limit=10000)
    seen = _names(view)
    assert world.bob_task not in seen and world.bob_file not in seen
    assert all(e.actor in (world.alice_id, world.bob_id) for e in view.entries)
    # bob's own entries reach alice only where they name her task
    for e in view.entries:
        if e.actor == world.bob_id:
            assert world.alice_task in e.task_ids
    assert not any(e.message.startswith("user_login") and e.actor != world.alice_id
                   for e in view.entries)
    # bob: his own, never alice's task or file
    bob_view = world.bob.participant_audit(limit=10000)
    assert world.alice_file not in _names(bob_view)
    assert all(world.alice_task not in e.task_ids or e.actor == world.bob_id
               for e in bob_view.entries)
    assert not any(e.actor == world.alice_id for e in bob_view.entries)
    # asking by task id does not open a task one is not in
    by_task = world.bob.participant_audit(task_id=world.alice_task).entries
    assert by_task and all(e.actor == world.bob_id for e in by_task)
    assert world.alice.participant_audit(task_id=world.bob_task).entries == []


def test_the_function_owner_sees_every_task_of_the_function(world: World) -> None:
    view = world.fo.participant_audit(limit=10000)
    seen = _names(view)
    assert {world.alice_task, world.bob_task, world.function} <= seen
    assert any(e.message == "register_function" and e.actor == world.fo_id
               for e in view.entries)
    # not the data owners' files registered outside the tasks, nor their logins
    assert not any(e.message == "register_input_file" for e in view.entries)
    assert not any(e.message == "user_login" and e.actor != world.fo_id for e in view.entries)


def test_task_filter_keeps_only_that_task(world: World) -> None:
    view = world.fo.participant_audit(task_id=world.bob_task)
    assert view.entries
    assert all(world.bob_task in e.task_ids for e in view.entries)
    expect_error("INVALID_ARGUMENT", "invalid task id",
                 lambda: world.fo.participant_audit(task_id="not-an-id"))


def test_admin_query_is_unchanged(world: World, server: Server) -> None:
    with server.admin() as admin:
        entries = admin.query_audit_logs(f"user:{world.alice_id} AND message:create_task", 5)
        assert [e.message for e in entries] == ["create_task"]
        assert entries[0].user == f"{{ user: {world.alice_id}, role: DataOwner(\"a\") }}"
        # the Teaclave wire answer carries exactly Teaclave's fields
        from confide.rpc._gen import teaclave_common_pb2 as common
        assert [f.name for f in common.Entry.DESCRIPTOR.fields] == [
            "microsecond", "ip", "user", "message", "result"]
        # the admin's participant view is their own, not everyone's
        mine = admin.participant_audit(limit=10000)
        # (the server is shared with other tests: entries naming the admin's own tasks,
        # functions and files from them are the admin's to see too)
        assert all(e.actor in ("admin", "") or "admin" in e.user or
                   e.task_ids or e.function_ids or e.file_ids for e in mine.entries)
        assert world.alice_task not in _names(mine)


def _raw(client: Client, **kw: object) -> v1.ParticipantAuditResponse:
    return client._call(client._ext.QueryParticipantAudit,
                        v1.ParticipantAuditRequest(**kw))  # type: ignore[arg-type]


def test_an_answer_changed_anywhere_fails_client_verification(world: World) -> None:
    pinned = world.alice.frontend_certificate_der
    good = _raw(world.alice, task_id=world.alice_task)
    assert verify_participant_audit(good, pinned).entries
    assert len(good.entries) >= 2

    def tampered(edit: object) -> v1.ParticipantAuditResponse:
        r = v1.ParticipantAuditResponse()
        r.CopyFrom(good)
        edit(r)  # type: ignore[operator]
        return r

    def flip(b: bytes) -> bytes:
        return bytes([b[0] ^ 1]) + b[1:]

    edits = {
        "message": lambda r: setattr(r.entries[0], "message", "get_task"),
        "result": lambda r: setattr(r.entries[0], "result", not r.entries[0].result),
        "actor": lambda r: setattr(r.entries[0], "actor", "mallory"),
        "microsecond": lambda r: setattr(r.entries[0], "microsecond",
                                         r.entries[0].microsecond + 1),
        "time": lambda r: setattr(r.entries[0], "time", "2001-01-01T00:00:00.000000Z"),
        "task ids": lambda r: r.entries[0].task_ids.append(world.bob_task),
        "seq": lambda r: setattr(r.entries[0], "seq", r.entries[1].seq),
        "salt": lambda r: setattr(r.entries[0], "salt", flip(r.entries[0].salt)),
        "proof": lambda r: r.entries[0].inclusion_proof.__setitem__(
            0, flip(r.entries[0].inclusion_proof[0])),
        "root": lambda r: setattr(r.tree_head, "root", flip(r.tree_head.root)),
        "size": lambda r: setattr(r.tree_head, "tree_size", r.tree_head.tree_size + 1),
        "issued": lambda r: setattr(r.tree_head, "issued_microsecond", 1),
        "signature": lambda r: setattr(r.tree_head, "signature", r.tree_head.signature[:-1]),
        "certificate": lambda r: setattr(r.tree_head, "certificate",
                                         flip(r.tree_head.certificate)),
        "no head": lambda r: r.ClearField("tree_head"),
    }
    for name, edit in edits.items():
        with pytest.raises(AuditProofError):
            verify_participant_audit(tampered(edit), pinned)
            pytest.fail(f"{name}: a changed answer verified")
    with pytest.raises(AuditProofError, match="no pinned"):
        verify_participant_audit(good, None)


def _reseal_audit_row(server: Server, seq: int, edit: object) -> None:
    """Edit one audit row as a control plane holding the record-seal key (not the audit key)
    could: the row's storage seal is recomputed, the chain MAC is not."""
    from confide.crypto.records import RecordSealer
    from confide.node import open_root_secret
    from confide.storage import Database

    secret = open_root_secret(server.data_dir, create=False)
    db = Database(f"sqlite:///{server.data_dir / 'confide.db'}",
                  RecordSealer(secret.derive("record-seal", 32)))
    try:
        with db.write() as txn:
            row = txn.get("audit", str(seq))
            assert row is not None
            body = dict(row.body)
            edit(body)  # type: ignore[operator]
            txn.update("audit", str(seq), body)
    finally:
        db.close()


@pytest.mark.parametrize("field", ["message", "actor", "tasks", "leaf"])
def test_a_resealed_database_edit_is_refused(fresh_server: Server, field: str) -> None:
    from confide.crypto.audit_proof import AuditLeaf

    server = fresh_server.start()
    alice_id, alice = server.new_user("DataOwner", "a", prefix="alice")
    mallory_id, mallory = server.new_user("DataOwner", "m", prefix="mallory")
    with alice, mallory:
        f = input_file(alice)
        alice.get_input_file(f)
        before = alice.participant_audit()
        entry = next(e for e in before.entries if e.message == "get_input_file")

        def edit(body: dict[str, object]) -> None:
            if field == "message":
                body["message"] = "get_output_file"
            elif field == "actor":
                body["actor"] = "mallory"  # hand alice's entry to another user
            elif field == "tasks":
                body["tasks"] = ["task-00000000-0000-0000-0000-000000000000"]
            else:  # a consistent leaf for an edited entry; the chain MAC is not recomputed
                body["message"] = "get_output_file"
                body["leaf"] = AuditLeaf(
                    entry.seq, entry.microsecond, entry.ip, entry.user, "get_output_file",
                    entry.result, entry.actor, (), (), entry.file_ids,
                    bytes(body["salt"])).hash()  # type: ignore[arg-type]

        _reseal_audit_row(server, entry.seq, edit)
        # the entry is read again to be shown, and no longer matches its verified leaf
        err = expect_error("DATA_LOSS", None, alice.participant_audit)
        assert f"entry #{entry.seq} does not verify" in err.message
        # mallory is shown only her own entries (visibility is decided on verified fields)
        assert entry.seq not in {e.seq for e in mallory.participant_audit().entries}
    # the administrator's Teaclave query still answers (it does not walk the chain)
    with server.admin() as admin:
        assert admin.query_audit_logs(f"user:{alice_id}", 10)
    # after a restart the first query walks the whole chain: everybody is refused
    server.stop()
    server.start()
    with server.client(mallory_id, "pw-" + mallory_id) as mallory:
        err = expect_error("DATA_LOSS", None, mallory.participant_audit)
        assert f"entry #{entry.seq} does not verify" in err.message


def test_failed_logins_on_my_account_are_mine_only(server: Server) -> None:
    alice_id, alice = server.new_user("DataOwner", "a", prefix="alice")
    _, bob = server.new_user("DataOwner", "b", prefix="bob")
    with alice, bob, server.client() as anon:
        expect_error("UNAUTHENTICATED", None, lambda: anon.login(alice_id, "wrong password"))
        failed = [e for e in alice.participant_audit().entries
                  if e.message.startswith("user_login: authentication failed")]
        assert len(failed) == 1 and failed[0].actor == alice_id and not failed[0].result
        assert not any(alice_id in e.message or e.actor == alice_id
                       for e in bob.participant_audit(limit=10000).entries)


def test_a_session_refuses_a_shrunk_forked_or_rewritten_log(world: World) -> None:
    from confide.client._audit import check_extends

    alice = world.alice
    first = alice.participant_audit()
    second = alice.participant_audit()  # checked: extends the first (consistency proof)
    assert second.tree_head.tree_size > first.tree_head.tree_size
    size, root = second.tree_head.tree_size, second.tree_head.root
    alice.audit_head = (size + 1000, root)  # as if a larger tree had been seen
    with pytest.raises(AuditProofError, match="shrank"):
        alice.participant_audit()
    alice.audit_head = (size, b"\1" * 32)  # as if another tree of that size had been seen
    with pytest.raises(AuditProofError, match="does not extend"):
        alice.participant_audit()
    alice.audit_head = None
    third = alice.participant_audit()
    with pytest.raises(AuditProofError, match="forked"):
        check_extends((third.tree_head.tree_size, b"\2" * 32),
                      (third.tree_head.tree_size, third.tree_head.root), [])
    good = _raw(alice, known_tree_size=third.tree_head.tree_size)
    proof = [bytes(p) for p in good.consistency_proof]
    assert proof
    check_extends((third.tree_head.tree_size, third.tree_head.root),
                  (good.tree_head.tree_size, good.tree_head.root), proof)
    with pytest.raises(AuditProofError, match="does not extend"):
        check_extends((third.tree_head.tree_size, third.tree_head.root),
                      (good.tree_head.tree_size, good.tree_head.root),
                      [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]])
