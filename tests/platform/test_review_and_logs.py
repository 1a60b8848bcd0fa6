"""confide.v1 review, rejection, early input caps, and what a failed task keeps (its log).

Also: Teaclave's own RPCs keep Teaclave's behaviour (GetFunction hides a private
payload from the allow-list even when the owner opened review; codes and texts).
"""

from __future__ import annotations

import grpc
import pytest

from confide.client import FunctionArgument, FunctionFile, TaskStatus
from confide.rpc._gen import confide_v1_pb2 as v1
from confide.rpc._gen import teaclave_frontend_service_pb2 as pb

from ._helpers import CMAC, IV12, KEY16, expect_error
from ._server import Server

RAISES_BEFORE_WRITING = b"""
def entrypoint(argv):
    print("starting with", len(argv), "arguments")
    raise ValueError("no rows in the input")
"""


def test_participant_reads_open_code_but_teaclave_get_function_still_hides_it(
        server: Server) -> None:
    owner_id, owner = server.new_user("FunctionOwner")
    user_id, user = server.new_user("DataOwner", "org-r")
    fid = owner.register_function("fn", executor_type="python", payload=b"secret code",
                                  public=False, user_allowlist=["org-r"])  # open by default
    assert user.get_function(fid).payload == b""  # Teaclave's GetFunction: unchanged (Q4)
    tid = user.create_task(fid, {}, executor="mesapy")
    review = user.review_task(tid)
    assert review.function is not None and review.function.payload == b"secret code"
    assert review.function.payload_visible and review.function.owner == owner_id
    assert review.waiting_for == sorted([owner_id, user_id])


def test_teaclave_registered_function_stays_confidential_in_review(server: Server) -> None:
    import hashlib

    _, owner = server.new_user("FunctionOwner")
    _, user = server.new_user("DataOwner", "org-c")
    fid = owner.register_function("fn", executor_type="python", payload=b"engine",
                                  public=False, user_allowlist=["org-c"], code_review=None)
    tid = user.create_task(fid, {}, executor="mesapy")
    f = user.review_task(tid).function
    assert f is not None and not f.payload_visible and f.payload == b""
    assert f.payload_sha256 == hashlib.sha256(b"engine").digest() and f.code_review == \
        "confidential"
    assert owner.review_task(tid).function.payload == b"engine"  # type: ignore[union-attr]


def test_stranger_can_neither_review_nor_reject(server: Server) -> None:
    _, owner = server.new_user("FunctionOwner")
    _, user = server.new_user("DataOwner", "org-s")
    _, stranger = server.new_user("DataOwner", "org-s2")
    fid = owner.register_function("fn", executor_type="python", payload=b"x", public=False,
                                  user_allowlist=["org-s"])
    tid = user.create_task(fid, {}, executor="mesapy")
    expect_error("PERMISSION_DENIED", "permission denied", lambda: stranger.review_task(tid))
    expect_error("PERMISSION_DENIED", "permission denied", lambda: stranger.reject_task(tid))
    assert tid not in {p.task_id for p in stranger.pending_tasks()}


def test_rejection_reason_over_its_cap_is_refused(server: Server) -> None:
    _, user = server.new_user("DataOwner", "org-l")
    fid = server.new_user("FunctionOwner")[1].register_function(
        "builtin-echo", executor_type="builtin", arguments=[FunctionArgument("message")])
    tid = user.create_task(fid, {"message": "m"}, executor="builtin")
    cap = 4096  # Limits.max_rejection_reason_chars
    user.reject_task(tid, "r" * cap)
    expect_error("OUT_OF_RANGE", None, lambda: user.reject_task(tid, "r" * (cap + 1)))


def test_rejected_task_cannot_be_invoked_and_a_staged_one_cannot_be_rejected(
        server: Server) -> None:
    user_id, user = server.new_user("DataOwner", "org-j")
    fid = server.new_user("FunctionOwner")[1].register_function(
        "builtin-echo", executor_type="builtin", arguments=[FunctionArgument("message")])
    tid = user.create_task(fid, {"message": "m"}, executor="builtin")
    user.reject_task(tid, "changed my mind")
    err = expect_error("UNKNOWN", "failed to invoke task", lambda: user.invoke_task(tid))
    assert err.reason == "REJECTED" and f"rejected by {user_id}" in str(err)
    user.assign_data(tid)
    user.approve_task(tid)
    user.invoke_task(tid)
    assert user.wait(tid, 30).ok is True
    err = expect_error("FAILED_PRECONDITION", None, lambda: user.reject_task(tid))
    assert err.reason == "WRONG_STATE"


def test_declared_input_over_the_python_cap_is_refused_at_assign(server: Server) -> None:
    user_id, user = server.new_user("DataOwner", "org-cap")
    fid = server.new_user("FunctionOwner")[1].register_function(
        "fn", executor_type="python", payload=b"x", inputs=[FunctionFile("big")])
    cap = 512 * 1024 * 1024  # Limits.max_input_bytes
    over = user.register_input_file("https://example.com/big", schema="aes-gcm-128", key=KEY16,
                                    iv=IV12, cmac=CMAC, plaintext_size=cap + 1)
    at_cap = user.register_input_file("https://example.com/ok", schema="aes-gcm-128",
                                      key=KEY16, iv=IV12, cmac=CMAC, plaintext_size=cap)
    tid = user.create_task(fid, {}, executor="mesapy", inputs_ownership={"big": [user_id]})
    err = expect_error("OUT_OF_RANGE", None,
                       lambda: user.assign_data(tid, inputs={"big": over}))
    assert err.reason == "INPUT_TOO_LARGE" and "max_input_bytes" in err.hint
    assert "input too large for executor mesapy" in err.message
    user.assign_data(tid, inputs={"big": at_cap})
    assert user.get_task(tid).status == TaskStatus.DATA_ASSIGNED


@pytest.mark.parametrize("save_log", [True, False])
def test_failed_task_keeps_its_log_and_traceback_only_with_save_log(
        server: Server, save_log: bool) -> None:
    user_id, user = server.new_user("DataOwner", "org-log")
    out = user.new_output(file_name="never-written")
    arguments = [FunctionArgument("save_log", "true", False)] if save_log else []
    fid = server.new_user("FunctionOwner")[1].register_function(
        "fn", executor_type="python", payload=RAISES_BEFORE_WRITING,
                                 arguments=arguments, outputs=[FunctionFile("result")])
    tid = user.create_task(fid, {}, executor="mesapy", outputs_ownership={"result": [user_id]})
    user.assign_data(tid, outputs={"result": out.data_id})
    user.invoke_task(tid)
    task = user.wait(tid, 60)
    assert task.ok is False and "failed to open src file" in task.reason  # Teaclave's text
    review = user.review_task(tid)
    assert "raised an exception" in review.failure_detail
    if save_log:
        text = "\n".join(review.log)
        assert "starting with 2 arguments" in text
        assert "Traceback (most recent call last):" in text
        assert 'File "<function>", line 4, in entrypoint' in text
        assert "ValueError: no rows in the input" in text
    else:
        assert review.log == []  # nobody approved the function's lines leaving the worker


def test_new_apis_in_the_role_matrix(server: Server) -> None:
    """Layer 1 for the confide.v1 review calls: data owners and function owners, not others."""
    _, owner = server.new_user("FunctionOwner")
    _, data_owner = server.new_user("DataOwnerManager", "m")
    bogus = "task-00000000-0000-4000-8000-000000000000"
    for client in (owner, data_owner):
        assert client.pending_tasks() == []
        expect_error("INVALID_ARGUMENT", "invalid task id", lambda c=client: c.review_task(bogus))
        expect_error("INVALID_ARGUMENT", "invalid task id", lambda c=client: c.reject_task(bogus))
    expect_error("PERMISSION_DENIED", "permission denied",
                 lambda: data_owner.set_code_review("function-00000000-0000-4000-8000-"
                                                    "000000000000", "open"))
    expect_error("INVALID_ARGUMENT", "invalid function id",
                 lambda: owner.set_code_review("function-00000000-0000-4000-8000-000000000000",
                                               "open"))


def test_unspecified_code_review_is_refused_by_set_code_review(server: Server) -> None:
    _, owner = server.new_user("FunctionOwner")
    fid = owner.register_function("fn", executor_type="python", payload=b"x")
    req = v1.SetCodeReviewRequest(function_id=fid)
    expect_error("INVALID_ARGUMENT", None, lambda: owner._call(owner._ext.SetCodeReview, req))


def test_teaclave_clients_see_teaclave_texts_and_a_detail_trailer(server: Server) -> None:
    """The detail rides in grpc-status-details-bin; the status text is still Teaclave's."""
    admin = server.admin()
    fid = admin.register_function("builtin-echo", executor_type="builtin",
                                  arguments=[FunctionArgument("message")])
    req = pb.CreateTaskRequest(function_id=fid, function_arguments='{"x": 1}',
                               executor="builtin")
    with pytest.raises(grpc.RpcError) as info:
        admin._front.CreateTask(req, metadata=admin._metadata(), timeout=30)
    call = info.value
    assert call.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert call.details() == "invalid task"  # type: ignore[attr-defined]
    keys = [k for k, _ in call.trailing_metadata()]  # type: ignore[attr-defined]
    assert "grpc-status-details-bin" in keys
