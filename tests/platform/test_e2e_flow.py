"""End to end against ``confide serve``: the success path of every RPC."""

from __future__ import annotations

from confide.client import FunctionArgument, TaskStatus
from confide.rpc._gen import teaclave_frontend_service_pb2 as pb

from ._helpers import echo_function, input_file, io_function, output_file
from ._server import Server


def test_single_party_echo_runs_in_a_worker(server: Server) -> None:
    _, alice = server.new_user("DataOwner", "org1")
    fid = echo_function(server.admin())
    tid = alice.create_task(fid, {"message": "Hello, Teaclave!"}, executor="builtin")
    assert alice.get_task(tid).status == TaskStatus.CREATED
    alice.invoke_task(tid)  # single participant, no data: invocable at once
    task = alice.wait(tid, 30)
    assert task.status == TaskStatus.FINISHED
    assert task.ok is True
    assert task.return_value == b"Hello, Teaclave!"
    assert task.function_arguments == {"message": "Hello, Teaclave!"}


def test_multi_party_private_function_needs_every_approval(server: Server) -> None:
    owner_id, owner = server.new_user("FunctionOwner")
    alice_id, alice = server.new_user("DataOwner", "orgA")
    bob_id, bob = server.new_user("DataOwner", "orgB")
    fid = owner.register_function("builtin-echo", executor_type="builtin", public=False,
                                  user_allowlist=["orgA"],
                                  arguments=[FunctionArgument("message")],
                                  outputs=[])
    fid2 = io_function(server.admin(), inputs=["in_a", "in_b"], outputs=[])
    # The private function: alice + the function owner.
    tid = alice.create_task(fid, {"message": "m"}, executor="builtin")
    task = alice.get_task(tid)
    assert task.participants == sorted([alice_id, owner_id])
    alice.assign_data(tid)
    alice.approve_task(tid)
    assert alice.get_task(tid).status == TaskStatus.DATA_ASSIGNED
    owner.approve_task(tid)
    assert alice.get_task(tid).status == TaskStatus.APPROVED
    alice.invoke_task(tid)
    assert alice.wait(tid, 30).return_value == b"m"
    # Two data owners' inputs: both must assign and approve.
    tid2 = alice.create_task(fid2, {"message": "joined"}, executor="builtin",
                             inputs_ownership={"in_a": [alice_id], "in_b": [bob_id]})
    alice.assign_data(tid2, inputs={"in_a": input_file(alice)})
    assert alice.get_task(tid2).status == TaskStatus.CREATED
    bob.assign_data(tid2, inputs={"in_b": input_file(bob)})
    assert bob.get_task(tid2).status == TaskStatus.DATA_ASSIGNED
    alice.approve_task(tid2)
    bob.approve_task(tid2)
    t = alice.get_task(tid2)
    assert t.status == TaskStatus.APPROVED
    assert t.approved_users == sorted([alice_id, bob_id])
    assert set(t.assigned_inputs) == {"in_a", "in_b"}


def test_function_rpcs(server: Server) -> None:
    owner_id, owner = server.new_user("FunctionOwner")
    fid = owner.register_function("f", executor_type="python", description="d", payload=b"x",
                                  arguments=[FunctionArgument("a", "1", False)],
                                  user_allowlist=["someone"], usage_quota=5)
    f = owner.get_function(fid)
    assert (f.name, f.owner, f.payload, f.executor_type) == ("f", owner_id, b"x", "python")
    assert owner.get_function_usage_stats(fid) == (5, 0)
    assert owner.list_functions() == ([fid], [])
    fid_same = owner.get_function(fid.upper().replace("FUNCTION-", "function-"))
    assert fid_same.name == "f"  # ids parse case-insensitively (spec §3.4)
    # UpdateFunction directly: the Teaclave SDK cannot call it (spec S4).
    resp = owner._call(owner._front.UpdateFunction, pb.UpdateFunctionRequest(
        function_id=fid, name="g", executor_type="builtin", public=True, usage_quota=-1))
    assert resp.function_id == fid
    assert owner.get_function(fid).name == "g"
    assert owner.get_function_usage_stats(fid) == (-1, 0)
    owner.disable_function(fid)
    assert owner.list_functions() == ([], [])
    fid2 = owner.register_function("h", executor_type="builtin")
    owner.delete_function(fid2)


def test_file_rpcs(server: Server) -> None:
    alice_id, alice = server.new_user("DataOwner", "org1")
    bob_id, _ = server.new_user("DataOwner", "org2")
    iid = input_file(alice)
    assert alice.get_input_file(iid) == ([alice_id], bytes(16))
    oid = output_file(alice)
    assert alice.get_output_file(oid) == ([alice_id], b"")
    new_iid = alice._call(alice._front.UpdateInputFile, pb.UpdateInputFileRequest(
        data_id=iid, url="https://example.com/new")).data_id
    assert new_iid != iid and alice.get_input_file(new_iid)[1] == bytes(16)
    new_oid = alice._call(alice._front.UpdateOutputFile, pb.UpdateOutputFileRequest(
        data_id=oid, url="https://example.com/new-out")).data_id
    assert new_oid != oid and alice.get_output_file(new_oid) == ([alice_id], b"")
    fusion = alice.register_fusion_output([alice_id, bob_id])
    assert sorted(alice.get_output_file(fusion)[0]) == sorted([alice_id, bob_id])


def test_list_tasks_and_audit_query(server: Server) -> None:
    admin = server.admin()
    _, alice = server.new_user("DataOwner", "org1")
    fid = echo_function(admin)
    tid = alice.create_task(fid, {"message": "x"}, executor="builtin")
    assert tid in alice.list_tasks()
    entries = admin.query_audit_logs("create_task", 5)
    assert entries and all("create_task" in e.message for e in entries)
    assert entries[0].microsecond >= entries[-1].microsecond  # newest first
    assert len(entries[0].ip) == 16 and entries[0].ip[12:] == bytes([127, 0, 0, 1])
