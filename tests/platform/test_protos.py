"""The wire contract: committed stubs are current and the Teaclave protos match the spec."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from confide.rpc._gen import teaclave_common_pb2 as common
from confide.rpc._gen import teaclave_frontend_service_pb2 as fe

ROOT = Path(__file__).resolve().parents[2]


def test_committed_stubs_are_generated_from_the_protos() -> None:
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def _fields(message: type) -> dict[str, tuple[int, int, int]]:
    d = message.DESCRIPTOR  # type: ignore[attr-defined]
    return {f.name: (f.number, f.type, 0) for f in d.fields}


def test_field_numbers_with_their_deliberate_gaps() -> None:
    numbers = {name: n for name, (n, _, _) in _fields(fe.GetTaskResponse).items()}
    assert numbers == {"task_id": 1, "creator": 2, "function_id": 3, "function_owner": 4,
                       "function_arguments": 5, "inputs_ownership": 6, "outputs_ownership": 7,
                       "participants": 8, "approved_users": 9, "assigned_inputs": 10,
                       "assigned_outputs": 11, "status": 20, "result": 21}
    reg = {name: n for name, (n, _, _) in _fields(fe.RegisterFunctionRequest).items()}
    assert reg == {"name": 1, "description": 2, "executor_type": 3, "public": 4, "payload": 5,
                   "arguments": 6, "inputs": 10, "outputs": 11, "user_allowlist": 12,
                   "usage_quota": 13}
    upd = {name: n for name, (n, _, _) in _fields(fe.UpdateFunctionRequest).items()}
    assert upd["arguments"] == 7 and upd["inputs"] == 10
    create = {name: n for name, (n, _, _) in _fields(fe.CreateTaskRequest).items()}
    assert create == {"function_id": 1, "function_arguments": 2, "executor": 3,
                      "inputs_ownership": 10, "outputs_ownership": 11}


def test_common_types_keep_teaclave_names() -> None:
    result = common.TaskResult.DESCRIPTOR
    assert [f.name for f in result.oneofs_by_name["result"].fields] == ["Ok", "Err"]
    assert {v.name: v.number for v in common.TaskStatus.DESCRIPTOR.values} == {
        "Created": 0, "DataAssigned": 1, "Approved": 2, "Staged": 3, "Running": 4,
        "Finished": 10, "Canceled": 20, "Failed": 99}
    assert common.TaskOutputs.DESCRIPTOR.fields_by_name["tags_map"].message_type.GetOptions(
    ).map_entry


def test_package_service_and_file_names_are_teaclaves() -> None:
    assert fe.DESCRIPTOR.name == "teaclave_frontend_service.proto"
    assert fe.DESCRIPTOR.package == "teaclave_frontend_service_proto"
    service = fe.DESCRIPTOR.services_by_name["TeaclaveFrontend"]
    assert len(service.methods) == 22
    assert common.DESCRIPTOR.name == "teaclave_common.proto"
