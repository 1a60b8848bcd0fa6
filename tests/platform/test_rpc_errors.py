"""Error paths of the frontend RPCs with Teaclave's status codes (spec §1.7, §3)."""

from __future__ import annotations

import grpc
import pytest

from confide.client import FunctionArgument, FunctionFile
from confide.rpc._gen import teaclave_frontend_service_pb2 as pb

from ._helpers import CMAC, IV12, KEY16, expect_error, input_file, output_file
from ._server import Server


def test_register_input_file_validation(server: Server) -> None:
    _, c = server.new_user("DataOwner", "a")
    reg = c.register_input_file
    expect_error("INTERNAL", "Invalid length",
                 lambda: reg("https://x/a", schema="aes-gcm-128", key=KEY16, iv=IV12, cmac=b"1"))
    expect_error("INTERNAL", None,
                 lambda: reg("https://x/a", schema="aes-gcm-129", key=KEY16, iv=IV12, cmac=CMAC))
    expect_error("INTERNAL", None,
                 lambda: reg("https://x/a", schema="aes-gcm-128", key=KEY16[:15], iv=IV12,
                             cmac=CMAC))
    expect_error("INTERNAL", None,
                 lambda: reg("no-scheme", schema="aes-gcm-128", key=KEY16, iv=IV12, cmac=CMAC))
    expect_error("INTERNAL", None,
                 lambda: reg("https://x/a", schema="teaclave-file-128", key=KEY16, iv=IV12,
                             cmac=CMAC))  # teaclave-file-128 needs an empty iv
    missing = pb.RegisterInputFileRequest(url="https://x/a", cmac=CMAC)
    expect_error("INTERNAL", None, lambda: c._call(c._front.RegisterInputFile, missing))
    # raw inputs still need a 16-byte cmac (Q28) but no key
    reg("https://x/raw", schema="raw", key=b"", iv=b"", cmac=CMAC)


def test_file_id_errors(server: Server) -> None:
    _, c = server.new_user("DataOwner", "a")
    upd = pb.UpdateInputFileRequest(data_id="input-not-a-uuid", url="https://x/1")
    expect_error("INTERNAL", None, lambda: c._call(c._front.UpdateInputFile, upd))
    upd.data_id = "input-00000000-0000-4000-8000-000000000000"
    expect_error("INVALID_ARGUMENT", "invalid data id",
                 lambda: c._call(c._front.UpdateInputFile, upd))
    upd.data_id = input_file(c)
    upd.url = "not a url"
    expect_error("INTERNAL", None, lambda: c._call(c._front.UpdateInputFile, upd))
    expect_error("INVALID_ARGUMENT", "invalid data id", lambda: c.get_input_file("garbage"))
    oid = output_file(c)
    expect_error("INVALID_ARGUMENT", "invalid data id", lambda: c.get_input_file(oid))  # kind
    expect_error("INVALID_ARGUMENT", "invalid output file",
                 lambda: c.register_input_from_output(oid))  # never written


def test_register_function_validation(server: Server) -> None:
    admin = server.admin()
    err = expect_error("INTERNAL", "Invalid executor type: foo (executor types: builtin, "
                       "python, wamr)", lambda: admin.register_function("f", executor_type="foo"))
    assert err.reason == "UNKNOWN_EXECUTOR_TYPE"
    expect_error("INVALID_ARGUMENT", "invalid function id", lambda: admin.get_function("nope"))
    expect_error("INVALID_ARGUMENT", "invalid function id",
                 lambda: admin.get_function("task-00000000-0000-4000-8000-000000000000"))


def test_create_task_validation(server: Server) -> None:
    admin = server.admin()
    fid = admin.register_function(
        "builtin-echo", executor_type="builtin",
        arguments=[FunctionArgument("message"), FunctionArgument("save_log", "true", False)],
        inputs=[FunctionFile("a"), FunctionFile("b", optional=True)])
    create = admin.create_task
    expect_error("INTERNAL", "Unsupported executor: foo (executors: builtin, mesapy, wamr)",
                 lambda: create(fid, {"message": "m"}, executor="foo",
                                inputs_ownership={"a": ["admin"]}))
    raw = pb.CreateTaskRequest(function_id=fid, function_arguments="", executor="builtin")
    expect_error("INTERNAL", None, lambda: admin._call(admin._front.CreateTask, raw))
    raw.function_arguments = "[1]"
    expect_error("INTERNAL", None, lambda: admin._call(admin._front.CreateTask, raw))
    # Supplied keys must equal the overwritable arguments exactly.
    for args in ({}, {"message": "m", "extra": 1}, {"message": "m", "save_log": "true"}):
        expect_error("INVALID_ARGUMENT", "invalid task",
                     lambda a=args: create(fid, a, executor="builtin",
                                           inputs_ownership={"a": ["admin"]}))
    # Every required input listed; unknown names refused; optional may be listed.
    expect_error("INVALID_ARGUMENT", "invalid task",
                 lambda: create(fid, {"message": "m"}, executor="builtin"))
    expect_error("INVALID_ARGUMENT", "invalid task",
                 lambda: create(fid, {"message": "m"}, executor="builtin",
                                inputs_ownership={"a": ["admin"], "zz": ["admin"]}))
    tid = create(fid, {"message": "m"}, executor="builtin",
                 inputs_ownership={"a": ["admin"], "b": ["admin", "admin"]})
    task = admin.get_task(tid)
    # Non-overwritable defaults are injected as JSON strings; keys sorted, compact.
    assert task.function_arguments == {"message": "m", "save_log": "true"}
    assert task.inputs_ownership == {"a": ["admin"], "b": ["admin"]}
    expect_error("INVALID_ARGUMENT", "invalid function id",
                 lambda: create("function-x", {}, executor="builtin"))
    expect_error("INVALID_ARGUMENT", "invalid task id", lambda: admin.get_task("task-bad"))
    for fn in (admin.approve_task, admin.invoke_task, admin.cancel_task):
        expect_error("INVALID_ARGUMENT", "invalid task id", lambda f=fn: f("nope"))


def test_function_arguments_text_is_serde_json_style(server: Server) -> None:
    admin = server.admin()
    fid = admin.register_function("builtin-echo", executor_type="builtin",
                                  arguments=[FunctionArgument("message"), FunctionArgument("n"),
                                             FunctionArgument("f")])
    tid = admin.create_task(fid, {"message": "é", "n": 1e16, "f": 1.0}, executor="builtin")
    raw = admin._call(admin._front.GetTask, pb.GetTaskRequest(task_id=tid))
    assert raw.function_arguments == '{"f":1.0,"message":"é","n":1e16}'


def test_save_log_captures_the_function_lines(server: Server) -> None:
    admin = server.admin()
    fid = admin.register_function("builtin-echo", executor_type="builtin",
                                  arguments=[FunctionArgument("message"),
                                             FunctionArgument("save_log", "true", False)])
    tid = admin.create_task(fid, {"message": "hi"}, executor="builtin")
    admin.invoke_task(tid)
    task = admin.wait(tid, 30)
    assert task.log == ["[INFO teaclave_function::echo] hi"]


def test_audit_query_errors(server: Server) -> None:
    admin = server.admin()
    expect_error("UNKNOWN", None, lambda: admin.query_audit_logs('message:"unbalanced', 5))
    expect_error("UNKNOWN", None, lambda: admin.query_audit_logs("nofield:x", 5))
    assert admin.query_audit_logs("create_task", 0) == []


def test_oversized_message_is_out_of_range(server: Server) -> None:
    admin = server.admin()
    big = b"x" * (16 * 1024 * 1024 + 10)  # over the 16 MiB cap (Limits.max_message_bytes)
    err = expect_error("OUT_OF_RANGE", None,
                       lambda: admin.register_function("f", executor_type="python", payload=big))
    assert "message length too large" in err.message


def test_unknown_method_is_unimplemented(server: Server) -> None:
    c = server.client()
    assert c._pool.current is not None
    channel = c._pool.current.frontend
    call = channel.unary_unary("/teaclave_frontend_service_proto.TeaclaveFrontend/Nope",
                               request_serializer=lambda x: x, response_deserializer=lambda x: x)
    with pytest.raises(grpc.RpcError) as e:
        call(b"", timeout=5)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_wrong_credentials_at_the_frontend(server: Server) -> None:
    c = server.client()
    req = pb.ListFunctionsRequest(user_id="admin")
    for md, msg in (([], "missing user id"), ([("id", "admin")], "missing token"),
                    ([("id", "admin"), ("token", "bad")], "incorrent credential")):
        with pytest.raises(grpc.RpcError) as e:
            c._front.ListFunctions(req, metadata=md, timeout=5)
        assert (e.value.code(), e.value.details()) == (grpc.StatusCode.UNAUTHENTICATED, msg)
    admin = server.admin()
    entries = admin.query_audit_logs('"incorrent credential"', 3)
    assert entries and entries[0].user == "" and entries[0].result is False
    assert entries[0].message == "authenticate to list_functions: incorrent credential"
