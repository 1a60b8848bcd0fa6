"""Who may call what: role → API (layer 1, spec §3.2) and the object rules (layer 2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from confide.client import Client, ClientError
from confide.rpc._gen import confide_v1_pb2 as v1
from confide.rpc._gen import teaclave_frontend_service_pb2 as pb

from ._helpers import echo_function, expect_error, input_file, io_function, output_file
from ._server import Server

BOGUS_TASK = "task-00000000-0000-4000-8000-000000000000"
BOGUS_FN = "function-00000000-0000-4000-8000-000000000000"
BOGUS_IN = "input-00000000-0000-4000-8000-000000000000"
BOGUS_OUT = "output-00000000-0000-4000-8000-000000000000"

# api name → (stub attribute, request builder given the caller's id). Requests
# are built so that a caller who passes layer 1 never gets PERMISSION_DENIED
# from layer 2 (they name nothing that exists, or only the caller itself).
CALLS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "register_input_file": ("RegisterInputFile", lambda me: pb.RegisterInputFileRequest(
        url="https://x/y", cmac=bytes(16), crypto_info={"schema": "raw"})),
    "register_output_file": ("RegisterOutputFile", lambda me: pb.RegisterOutputFileRequest(
        url="https://x/y", crypto_info={"schema": "teaclave-file-128", "key": bytes(16)})),
    "update_input_file": ("UpdateInputFile", lambda me: pb.UpdateInputFileRequest(
        data_id=BOGUS_IN, url="https://x/z")),
    "update_output_file": ("UpdateOutputFile", lambda me: pb.UpdateOutputFileRequest(
        data_id=BOGUS_OUT, url="https://x/z")),
    "register_fusion_output": ("RegisterFusionOutput", lambda me: pb.RegisterFusionOutputRequest(
        owner_list=[me, "someone-else"])),
    "register_input_from_output": (
        "RegisterInputFromOutput", lambda me: pb.RegisterInputFromOutputRequest(data_id=BOGUS_OUT)),
    "get_output_file": ("GetOutputFile", lambda me: pb.GetOutputFileRequest(data_id=BOGUS_OUT)),
    "get_input_file": ("GetInputFile", lambda me: pb.GetInputFileRequest(data_id=BOGUS_IN)),
    "register_function": ("RegisterFunction", lambda me: pb.RegisterFunctionRequest(
        name="f", executor_type="builtin")),
    "get_function": ("GetFunction", lambda me: pb.GetFunctionRequest(function_id=BOGUS_FN)),
    "get_function_usage_stats": ("GetFunctionUsageStats",
                                 lambda me: pb.GetFunctionUsageStatsRequest(function_id=BOGUS_FN)),
    "update_function": ("UpdateFunction", lambda me: pb.UpdateFunctionRequest(
        function_id=BOGUS_FN, executor_type="builtin")),
    "list_functions": ("ListFunctions", lambda me: pb.ListFunctionsRequest(user_id=me)),
    "delete_function": ("DeleteFunction",
                        lambda me: pb.DeleteFunctionRequest(function_id=BOGUS_FN)),
    "disable_function": ("DisableFunction",
                         lambda me: pb.DisableFunctionRequest(function_id=BOGUS_FN)),
    "create_task": ("CreateTask", lambda me: pb.CreateTaskRequest(function_id=BOGUS_FN)),
    "get_task": ("GetTask", lambda me: pb.GetTaskRequest(task_id=BOGUS_TASK)),
    "assign_data": ("AssignData", lambda me: pb.AssignDataRequest(task_id=BOGUS_TASK)),
    "approve_task": ("ApproveTask", lambda me: pb.ApproveTaskRequest(task_id=BOGUS_TASK)),
    "invoke_task": ("InvokeTask", lambda me: pb.InvokeTaskRequest(task_id=BOGUS_TASK)),
    "cancel_task": ("CancelTask", lambda me: pb.CancelTaskRequest(task_id=BOGUS_TASK)),
    "query_audit_logs": ("QueryAuditLogs", lambda me: pb.QueryAuditLogsRequest(
        query="get_task", limit=1)),
    "wait_task": ("WaitTask", lambda me: v1.WaitTaskRequest(task_id=BOGUS_TASK)),
    "list_tasks": ("ListTasks", lambda me: v1.ListTasksRequest(limit=1)),
}

FUNCTION_OWNER_APIS = {"register_function", "update_function", "delete_function",
                       "disable_function", "get_function", "list_functions",
                       "get_function_usage_stats",
                       # confide: owners of private functions are participants (compat doc)
                       "get_task", "approve_task", "wait_task", "list_tasks"}
DATA_OWNER_APIS = set(CALLS) - {"register_function", "update_function", "delete_function",
                                "disable_function", "query_audit_logs"}
ALLOWED = {
    "PlatformAdmin": set(CALLS),
    "FunctionOwner": FUNCTION_OWNER_APIS,
    "DataOwnerManager": DATA_OWNER_APIS,
    "DataOwner": DATA_OWNER_APIS,
}


@pytest.fixture(scope="module")
def clients(server: Server) -> dict[str, tuple[str, Client]]:
    return {role: server.new_user(role, "attr") for role in ALLOWED}


@pytest.mark.parametrize("role", sorted(ALLOWED))
@pytest.mark.parametrize("api", sorted(CALLS))
def test_role_to_api_matrix(clients: dict[str, tuple[str, Client]], role: str, api: str) -> None:
    me, client = clients[role]
    method, build = CALLS[api]
    stub = client._ext if api in ("wait_task", "list_tasks") else client._front
    try:
        client._call(getattr(stub, method), build(me))
        outcome = "ok"
    except ClientError as e:
        outcome = f"{e.code}: {e.message}"
    if api in ALLOWED[role]:
        assert not outcome.startswith("PERMISSION_DENIED"), outcome
    else:
        assert outcome == "PERMISSION_DENIED: permission denied"


# -- layer 2: owners and non-owners -------------------------------------------------
def test_private_function_is_visible_to_owner_admin_and_allowlist_only(server: Server) -> None:
    _, owner = server.new_user("FunctionOwner")
    _, listed_by_attr = server.new_user("DataOwner", "trusted-org")
    listed_id, listed_by_id = server.new_user("DataOwner", "x")
    _, stranger = server.new_user("DataOwner", "other-org")
    _, other_owner = server.new_user("FunctionOwner")
    fid = owner.register_function("secret", executor_type="python", payload=b"code",
                                  public=False, user_allowlist=["trusted-org", listed_id])
    assert owner.get_function(fid).payload == b"code"
    assert server.admin().get_function(fid).payload == b"code"
    for c in (listed_by_attr, listed_by_id):  # Q3: attribute or id, everywhere
        f = c.get_function(fid)
        assert f.payload == b"" and list(f.user_allowlist) == []
        assert c.get_function_usage_stats(fid) == (-1, 0)
    for c in (stranger, other_owner):
        expect_error("PERMISSION_DENIED", "permission denied", lambda c=c: c.get_function(fid))
        expect_error("PERMISSION_DENIED", "permission denied",
                     lambda c=c: c.get_function_usage_stats(fid))
    assert owner.get_function_usage_stats(fid) == (-1, 0)  # Q12 fix
    expect_error("PERMISSION_DENIED", "permission denied",
                 lambda: stranger.create_task(fid, {}, executor="mesapy"))
    listed_by_attr.create_task(fid, {}, executor="mesapy")


def test_only_the_owner_updates_or_deletes_and_admin_may_disable(server: Server) -> None:
    _, owner = server.new_user("FunctionOwner")
    _, other = server.new_user("FunctionOwner")
    admin = server.admin()
    fid = echo_function(owner)
    upd = pb.UpdateFunctionRequest(function_id=fid, name="x", executor_type="builtin")
    for c in (other, admin):  # PlatformAdmin is not exempt (spec §3.6)
        expect_error("PERMISSION_DENIED", "permission denied",
                     lambda c=c: c._call(c._front.UpdateFunction, upd))
        expect_error("PERMISSION_DENIED", "permission denied", lambda c=c: c.delete_function(fid))
    expect_error("PERMISSION_DENIED", "permission denied", lambda: other.disable_function(fid))
    admin.disable_function(fid)


def test_files_are_private_to_their_owners(server: Server) -> None:
    alice_id, alice = server.new_user("DataOwner", "a")
    _, bob = server.new_user("DataOwner", "b")
    iid, oid = input_file(alice), output_file(alice)
    for fn in (lambda: bob.get_input_file(iid), lambda: bob.get_output_file(oid),
               lambda: bob.register_input_from_output(oid),
               lambda: bob._call(bob._front.UpdateInputFile,
                                 pb.UpdateInputFileRequest(data_id=iid, url="https://x/1"))):
        expect_error("PERMISSION_DENIED", "permission denied", fn)
    expect_error("PERMISSION_DENIED", "permission denied",
                 lambda: bob.register_fusion_output(["x", "y"]))  # must include the caller
    expect_error("PERMISSION_DENIED", "permission denied",
                 lambda: alice.register_fusion_output([alice_id, alice_id]))  # Q10 fix


def test_tasks_are_visible_to_participants_only(server: Server) -> None:
    alice_id, alice = server.new_user("DataOwner", "a")
    bob_id, bob = server.new_user("DataOwner", "b")
    _, eve = server.new_user("DataOwner", "e")
    fid = io_function(server.admin(), inputs=["x"], outputs=[])
    tid = alice.create_task(fid, {"message": "m"}, executor="builtin",
                            inputs_ownership={"x": [bob_id]})
    assert bob.get_task(tid).participants == sorted([alice_id, bob_id])
    for fn in (lambda: eve.get_task(tid), lambda: eve.assign_data(tid),
               lambda: eve.wait(tid, 0)):
        expect_error("PERMISSION_DENIED", "permission denied", fn)
    # Only the creator invokes; the creator or an admin cancels.
    bob.assign_data(tid, inputs={"x": input_file(bob)})
    expect_error("PERMISSION_DENIED", "permission denied", lambda: eve.approve_task(tid))
    alice.approve_task(tid)
    bob.approve_task(tid)
    expect_error("PERMISSION_DENIED", "permission denied", lambda: bob.invoke_task(tid))
    expect_error("PERMISSION_DENIED", "permission denied", lambda: bob.cancel_task(tid))
    # The state check comes before the participant check (spec §3.7.5, Q13).
    expect_error("UNKNOWN", "failed to approve task", lambda: eve.approve_task(tid))
    server.admin().cancel_task(tid)


def test_data_owner_cannot_assign_foreign_or_mismatched_files(server: Server) -> None:
    alice_id, alice = server.new_user("DataOwner", "a")
    bob_id, bob = server.new_user("DataOwner", "b")
    fid = io_function(server.admin(), inputs=["x", "y"], outputs=["o"])
    tid = alice.create_task(fid, {"message": "m"}, executor="builtin",
                            inputs_ownership={"x": [alice_id], "y": [alice_id, bob_id]},
                            outputs_ownership={"o": [alice_id]})
    bobs = input_file(bob)
    denied = "permission denied"
    expect_error("PERMISSION_DENIED", denied, lambda: alice.assign_data(tid, inputs={"x": bobs}))
    expect_error("PERMISSION_DENIED", denied,
                 lambda: bob.assign_data(tid, inputs={"x": bobs}))  # owners ≠ ownership list
    expect_error("PERMISSION_DENIED", denied,
                 lambda: alice.assign_data(tid, inputs={"unknown": input_file(alice)}))
    mine = input_file(alice)
    alice.assign_data(tid, inputs={"x": mine})
    expect_error("PERMISSION_DENIED", denied, lambda: alice.assign_data(tid, inputs={"x": mine}))
    expect_error("INVALID_ARGUMENT", "invalid data id",
                 lambda: alice.assign_data(tid, outputs={"o": mine}))  # an input among outputs
    expect_error("INTERNAL", None, lambda: alice.assign_data(tid, inputs={"x": "input-nonsense"}))


def test_list_functions_of_another_user_is_admin_only(server: Server) -> None:
    owner_id, owner = server.new_user("FunctionOwner")
    _, other = server.new_user("FunctionOwner")
    fid = echo_function(owner)
    expect_error("PERMISSION_DENIED", "permission denied", lambda: other.list_functions(owner_id))
    registered, allowed = server.admin().list_functions(owner_id)
    assert registered == [fid] and fid in allowed  # admins see every function id (sorted)
    assert allowed == sorted(allowed)
