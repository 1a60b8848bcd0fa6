"""``confide serve --config``: the operator's caps reach the workers where tasks run.

The server is started as the README does, with a TOML file that shrinks the
per-file output cap to 64 KiB and an environment variable that shrinks the
log line cap. A function writing past the cap ends with a reason naming it
(Finished + Err: spec Q17 keeps the Failed status for a lost executor) and
nothing reaches the output's location; at the cap, the output is uploaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from confide.client import Client, FunctionArgument, FunctionFile, OutputLocation, Task, TaskStatus

from ..executors._wasm_support import flood_module
from ._server import Server

CAP = 64 * 1024
CAP_REASON = ("Runtime Error: output 'out' exceeds the 64 KiB per-file output cap "
              "(limits.max_output_file_bytes)")

#: Writes argv[1] bytes (the argument "n") to output "out" in 4 KiB calls,
#: ignoring every result, as the attacker's 1.31 GB function did.
WASM_FLOOD = flood_module(4096)

PY_FLOOD = b"""def entrypoint(argv):
    with teaclave_open('out', 'wb') as f:
        for _ in range(int(argv[1]) // 4096):
            f.write(b'o' * 4096)
    return 'written'
"""


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("configured")
    config = root / "confide.toml"
    config.write_text('[limits]\nmax_output_file_bytes = "64KiB"\n')
    server = Server(root / "data", workers=1, extra_args=["--config", str(config)],
                    extra_env={"CONFIDE_LIMITS__MAX_LOG_LINES": "0"}).start()
    yield server
    server.stop()


def _run_flood(server: Server, executor_type: str,
               n: int) -> tuple[Client, Task, OutputLocation]:
    executor, payload = ("wamr", WASM_FLOOD) if executor_type == "wamr" else ("mesapy", PY_FLOOD)
    fid = server.admin().register_function(
        "flood", executor_type=executor_type, payload=payload,
        arguments=[FunctionArgument("n")], outputs=[FunctionFile("out")])
    user_id, user = server.new_user("DataOwner", "org")
    tid = user.create_task(fid, {"n": str(n)}, executor=executor,
                           outputs_ownership={"out": [user_id]})
    output = user.new_output(file_name="flood.out")
    user.assign_data(tid, outputs={"out": output.data_id})
    user.approve_task(tid)
    user.invoke_task(tid)
    return user, user.wait(tid, 60), output


@pytest.mark.parametrize("executor_type", ["wamr", "python"])
def test_output_at_the_shrunk_cap_is_uploaded(configured: Server, executor_type: str) -> None:
    user, task, output = _run_flood(configured, executor_type, CAP)
    assert task.ok is True, task.reason
    cmac = task.tags_map["out"]
    assert user.download_decrypted(output, cmac) == (
        bytes(CAP) if executor_type == "wamr" else b"o" * CAP)


@pytest.mark.parametrize("executor_type", ["wamr", "python"])
def test_shrunk_output_cap_fails_the_task_and_uploads_nothing(
    configured: Server, executor_type: str
) -> None:
    _, task, output = _run_flood(configured, executor_type, 20 * CAP)
    assert task.status == TaskStatus.FINISHED
    assert (task.ok, task.reason) == (False, CAP_REASON)
    reply = httpx.get(output.get_url)
    assert reply.status_code == 404  # nothing, not even a prefix, was uploaded


def test_a_cap_set_in_the_environment_applies_in_the_worker(configured: Server) -> None:
    _, user = configured.new_user("DataOwner", "org")
    fid = configured.admin().register_function(
        "builtin-echo", executor_type="builtin",
        arguments=[FunctionArgument("message"), FunctionArgument("save_log")])
    tid = user.create_task(fid, {"message": "hi", "save_log": "true"}, executor="builtin")
    user.invoke_task(tid)
    task = user.wait(tid, 30)
    assert (task.ok, task.reason) == (
        False, "Runtime Error: log exceeds the 0-line log cap (limits.max_log_lines)")


def test_server_log_has_no_traceback(configured: Server) -> None:
    assert configured.log_path is not None
    assert "Traceback" not in Path(configured.log_path).read_text()
