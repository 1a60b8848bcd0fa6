"""Every task state transition and every illegal one (spec §3.7.3 to 3.7.7)."""

from __future__ import annotations

from confide.client import Client, FunctionFile, TaskStatus

from ._helpers import (
    echo_function,
    expect_error,
    input_file,
    io_function,
    output_file,
    start_endless_task,
)
from ._server import Server

ASSIGN_FAILED = "failed to assign data to task"
APPROVE_FAILED = "failed to approve task"
INVOKE_FAILED = "failed to invoke task"
ALREADY = "failed to cancel task, reason: task has already been canceled"


def _two_party(server: Server) -> tuple[Client, Client, str, str]:
    alice_id, alice = server.new_user("DataOwner", "a")
    bob_id, bob = server.new_user("DataOwner", "b")
    fid = io_function(server.admin(), inputs=["x"], outputs=["y"])
    tid = alice.create_task(fid, {"message": "m"}, executor="builtin",
                            inputs_ownership={"x": [bob_id]}, outputs_ownership={"y": [alice_id]})
    return alice, bob, tid, fid


def test_created_stays_created_until_all_data_is_assigned(server: Server) -> None:
    alice, bob, tid, _ = _two_party(server)
    expect_error("UNKNOWN", APPROVE_FAILED, lambda: alice.approve_task(tid))  # data missing
    expect_error("UNKNOWN", INVOKE_FAILED, lambda: alice.invoke_task(tid))
    alice.assign_data(tid, outputs={"y": output_file(alice)})
    assert alice.get_task(tid).status == TaskStatus.CREATED
    bob.assign_data(tid, inputs={"x": input_file(bob)})
    assert alice.get_task(tid).status == TaskStatus.DATA_ASSIGNED
    expect_error("UNKNOWN", ASSIGN_FAILED, lambda: alice.assign_data(tid))  # not Created now


def test_approvals_lead_to_approved_and_no_double_approval(server: Server) -> None:
    alice, bob, tid, _ = _two_party(server)
    alice.assign_data(tid, outputs={"y": output_file(alice)})
    bob.assign_data(tid, inputs={"x": input_file(bob)})
    alice.approve_task(tid)
    alice.approve_task(tid)  # idempotent while not everyone approved
    assert alice.get_task(tid).status == TaskStatus.DATA_ASSIGNED
    expect_error("UNKNOWN", INVOKE_FAILED, lambda: alice.invoke_task(tid))
    bob.approve_task(tid)
    assert alice.get_task(tid).status == TaskStatus.APPROVED
    expect_error("UNKNOWN", APPROVE_FAILED, lambda: bob.approve_task(tid))  # Approved: refused


def test_assign_with_nothing_declared_goes_to_data_assigned_never_approved(server: Server) -> None:
    _, alice = server.new_user("DataOwner", "a")
    tid = alice.create_task(echo_function(server.admin()), {"message": "m"}, executor="builtin")
    alice.assign_data(tid)
    assert alice.get_task(tid).status == TaskStatus.DATA_ASSIGNED  # not Approved here
    alice.approve_task(tid)  # one participant: everyone approved
    assert alice.get_task(tid).status == TaskStatus.APPROVED
    alice.invoke_task(tid)
    assert alice.wait(tid, 30).status == TaskStatus.FINISHED
    expect_error("UNKNOWN", INVOKE_FAILED, lambda: alice.invoke_task(tid))  # ≥ Staged
    expect_error("UNKNOWN", ALREADY, lambda: alice.cancel_task(tid))  # Finished
    expect_error("UNKNOWN", APPROVE_FAILED, lambda: alice.approve_task(tid))
    expect_error("UNKNOWN", ASSIGN_FAILED, lambda: alice.assign_data(tid))


def test_cancel_before_staging_says_task_canceled(server: Server) -> None:
    for steps in (0, 1, 2):  # Created, DataAssigned, Approved
        _, alice = server.new_user("DataOwner", "a")
        tid = alice.create_task(echo_function(server.admin()), {"message": "m"},
                                executor="builtin")
        if steps >= 1:
            alice.assign_data(tid)
        if steps >= 2:
            alice.approve_task(tid)
        alice.cancel_task(tid)
        task = alice.get_task(tid)
        assert (task.status, task.reason) == (TaskStatus.CANCELED, "Task canceled")
        expect_error("UNKNOWN", ALREADY, lambda c=alice, t=tid: c.cancel_task(t))
        expect_error("UNKNOWN", INVOKE_FAILED, lambda c=alice, t=tid: c.invoke_task(t))


def test_cancel_while_running_stops_it_and_the_worker_carries_on(server: Server) -> None:
    """mesapy_deadloop_cancel.py: Running (4) while executing, cancel, status 20."""
    admin = server.admin()
    tid = start_endless_task(admin)
    admin.cancel_task(tid)
    task = admin.wait(tid, 10)
    assert (task.status, task.reason) == (TaskStatus.CANCELED, "Task Canceled by the user")
    # Both workers still serve: run two tasks back to back.
    echo = echo_function(admin)
    for _ in range(2):
        t2 = admin.create_task(echo, {"message": "after"}, executor="builtin")
        admin.invoke_task(t2)
        assert admin.wait(t2, 30).return_value == b"after"


def test_quota_counts_invocations_and_is_checked_before_state(server: Server) -> None:
    admin = server.admin()
    fid = echo_function(admin, usage_quota=1)
    t1 = admin.create_task(fid, {"message": "1"}, executor="builtin")
    t2 = admin.create_task(fid, {"message": "2"}, executor="builtin")
    admin.invoke_task(t1)
    assert admin.get_function_usage_stats(fid) == (1, 1)
    expect_error("UNKNOWN", "function quota has been used up", lambda: admin.invoke_task(t2))
    # Quota before state: invoking the finished task reports the quota too.
    admin.wait(t1, 30)
    expect_error("UNKNOWN", "function quota has been used up", lambda: admin.invoke_task(t1))
    zero = echo_function(admin, usage_quota=0)  # proto3 default 0: never invocable (Q2)
    t3 = admin.create_task(zero, {"message": "x"}, executor="builtin")
    expect_error("UNKNOWN", "function quota has been used up", lambda: admin.invoke_task(t3))


def test_disabled_or_deleted_functions_cannot_run(server: Server) -> None:
    admin = server.admin()
    fid = echo_function(admin)
    tid = admin.create_task(fid, {"message": "x"}, executor="builtin")
    admin.disable_function(fid)  # Q5 fix: public functions too
    expect_error("PERMISSION_DENIED", "permission denied", lambda: admin.invoke_task(tid))
    expect_error("PERMISSION_DENIED", "permission denied",
                 lambda: admin.create_task(fid, {"message": "x"}, executor="builtin"))
    fid2 = echo_function(admin)
    tid2 = admin.create_task(fid2, {"message": "x"}, executor="builtin")
    admin.delete_function(fid2)
    expect_error("INVALID_ARGUMENT", "invalid function id", lambda: admin.invoke_task(tid2))


def test_executor_mismatch_is_accepted_then_fails_at_run_time(server: Server) -> None:
    admin = server.admin()
    fid = echo_function(admin)
    tid = admin.create_task(fid, {"message": "x"}, executor="mesapy")  # Q18: accepted
    admin.invoke_task(tid)
    task = admin.wait(tid, 30)
    assert task.status == TaskStatus.FINISHED and task.ok is False
    assert task.reason == "function not available: (Builtin, MesaPy)"


def test_output_written_once_cannot_be_assigned_again(server: Server) -> None:
    alice_id, alice = server.new_user("DataOwner", "a")
    wfid = server.admin().register_function(
        "writer", executor_type="python",
        payload=b"def entrypoint(argv):\n"
                b"    teaclave_open('o', 'wb').write(b'x')\n    return 'ok'\n",
        outputs=[FunctionFile("o")])
    out = alice.new_output(file_name="o.bin")
    t1 = alice.create_task(wfid, {}, executor="mesapy", outputs_ownership={"o": [alice_id]})
    alice.assign_data(t1, outputs={"o": out.data_id})
    alice.invoke_task(t1)
    assert alice.wait(t1, 60).ok is True
    assert alice.get_output_file(out.data_id)[1] != b""
    t2 = alice.create_task(wfid, {}, executor="mesapy", outputs_ownership={"o": [alice_id]})
    expect_error("PERMISSION_DENIED", "permission denied",  # Q9 fix
                 lambda: alice.assign_data(t2, outputs={"o": out.data_id}))
