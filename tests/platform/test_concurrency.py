"""50 concurrent clients creating and running tasks lose nothing; waiting callers
block nobody."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from confide.client import TaskStatus
from confide.client._sdk import _channel
from confide.rpc._gen import confide_v1_pb2 as v1
from confide.rpc._gen import confide_v1_pb2_grpc as v1_grpc
from confide.rpc._gen import teaclave_common_pb2 as pb

from ._helpers import echo_function
from ._server import Server

CLIENTS = 50
TASKS_EACH = 4
WAITERS = 300


@pytest.mark.slow
def test_fifty_concurrent_clients_lose_nothing(server: Server) -> None:
    fid = echo_function(server.admin())
    users = [server.new_user("DataOwner", "load") for _ in range(CLIENTS)]

    def work(i: int) -> list[tuple[str, str]]:
        _, client = users[i]
        done = []
        for j in range(TASKS_EACH):
            message = f"client {i} task {j}"
            tid = client.create_task(fid, {"message": message}, executor="builtin")
            client.invoke_task(tid)
            done.append((tid, message))
        return done

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = [r for batch in pool.map(work, range(CLIENTS)) for r in batch]
    assert len({tid for tid, _ in results}) == CLIENTS * TASKS_EACH
    for i, (tid, message) in enumerate(results):
        task = users[i // TASKS_EACH][1].wait(tid, 60)
        assert (task.status, task.return_value) == (TaskStatus.FINISHED, message.encode())
    for _uid, client in users:
        assert len(client.list_tasks()) == TASKS_EACH


def test_many_waiting_callers_hold_no_thread_and_block_nothing(server: Server) -> None:
    """More WaitTask calls than a thread-per-RPC server has threads (256) wait at
    once; meanwhile other RPCs are answered promptly and a task still runs."""
    admin = server.admin()
    fid = echo_function(admin)
    idle = admin.create_task(fid, {"message": "never invoked"}, executor="builtin")
    request = v1.WaitTaskRequest(task_id=idle, timeout_ms=4000)
    # A raw stub on one channel: the SDK's calls block, these are sent all at once.
    pem = (server.data_dir / "api-cert.pem").read_bytes()
    ext = v1_grpc.ConfideFrontendStub(_channel("127.0.0.1", server.ports["frontend"], pem))
    waits = [ext.WaitTask.future(request, metadata=admin._metadata(), timeout=30)
             for _ in range(WAITERS)]
    t0 = time.monotonic()
    assert admin.get_task(idle).status == TaskStatus.CREATED
    tid = admin.create_task(fid, {"message": "meanwhile"}, executor="builtin")
    admin.invoke_task(tid)
    assert admin.wait(tid, 30).return_value == b"meanwhile"
    assert time.monotonic() - t0 < 3.0  # not queued behind the waiting calls
    assert all(w.result().status == pb.TaskStatus.Created for w in waits)
