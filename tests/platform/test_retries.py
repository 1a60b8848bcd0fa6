"""Retries that are safe: idempotency keys on creates (issue 12 item 5).

Through a running ``confide serve``: a Teaclave-protocol client that sends the
``idempotency-key`` header twice gets one task; the SDK, whose first answer is
lost after the server committed (what a DEADLINE_EXCEEDED after the commit
looks like to a client), retries with the same key and gets the same ids; a key
reused for another request, or malformed, is refused naming it.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from confide.client import Client, ClientError, TaskStatus
from confide.client._sdk import _channel
from confide.rpc._gen import teaclave_frontend_service_pb2 as pb
from confide.rpc._gen import teaclave_frontend_service_pb2_grpc as pb_grpc

from ._helpers import echo_function, start_endless_task
from ._server import Server


class _LostAnswer(grpc.RpcError, grpc.Call):  # type: ignore[misc]
    """What a client sees when the server's answer never reaches it."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.DEADLINE_EXCEEDED

    def details(self) -> str:
        return "Deadline Exceeded"

    def trailing_metadata(self) -> tuple[()]:
        return ()

    def initial_metadata(self) -> tuple[()]:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Callable[[], None]) -> bool:
        return False


class _LoseFirstAnswer(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Lets each named method's first call reach the server and commit, then loses its answer."""

    def __init__(self, methods: set[str]) -> None:
        self.pending = set(methods)
        self.sent: list[tuple[str, str]] = []  # (method, idempotency key) per attempt

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        method = details.method.rsplit("/", 1)[-1]
        key = dict(details.metadata or ()).get("idempotency-key", "")
        self.sent.append((method, key))
        answer = continuation(details, request)
        if method in self.pending:
            self.pending.discard(method)
            answer.result()  # the server did the work and committed
            raise _LostAnswer()
        return answer


def _teaclave_stub(server: Server) -> pb_grpc.TeaclaveFrontendStub:
    pem = (server.data_dir / "api-cert.pem").read_bytes()
    return pb_grpc.TeaclaveFrontendStub(_channel("127.0.0.1", server.ports["frontend"], pem))


def _session(client: Client) -> list[tuple[str, str]]:
    assert client.user_id is not None and client._token is not None
    return [("id", client.user_id), ("token", client._token)]


def test_a_teaclave_client_sending_the_same_key_twice_gets_one_task(server: Server) -> None:
    _, client = server.new_user("PlatformAdmin")
    fid = echo_function(client, public=True)
    stub = _teaclave_stub(server)
    request = pb.CreateTaskRequest(function_id=fid, executor="builtin",
                                   function_arguments='{"message": "once"}')
    meta = [*_session(client), ("idempotency-key", "retry-key-0001")]
    before = len(client.list_tasks(1000))
    first = stub.CreateTask(request, metadata=meta, timeout=10).task_id
    again = stub.CreateTask(request, metadata=meta, timeout=10).task_id
    assert first == again
    assert len(client.list_tasks(1000)) == before + 1
    # without a key Teaclave's behaviour is unchanged: every call creates
    plain = [stub.CreateTask(request, metadata=_session(client), timeout=10).task_id
             for _ in range(2)]
    assert len({first, *plain}) == 3


def test_a_key_reused_for_another_request_or_malformed_is_refused(server: Server) -> None:
    _, client = server.new_user("PlatformAdmin")
    fid = echo_function(client, public=True)
    stub = _teaclave_stub(server)
    meta = [*_session(client), ("idempotency-key", "retry-key-0002")]
    stub.CreateTask(pb.CreateTaskRequest(function_id=fid, executor="builtin",
                                         function_arguments='{"message": "a"}'),
                    metadata=meta, timeout=10)
    with pytest.raises(grpc.RpcError) as e:
        stub.CreateTask(pb.CreateTaskRequest(function_id=fid, executor="builtin",
                                             function_arguments='{"message": "b"}'),
                        metadata=meta, timeout=10)
    assert e.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "'retry-key-0002' was used for a different request" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        stub.CreateTask(pb.CreateTaskRequest(function_id=fid, executor="builtin",
                                             function_arguments='{"message": "a"}'),
                        metadata=[*_session(client), ("idempotency-key", "bad key")], timeout=10)
    assert e.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "invalid idempotency-key" in e.value.details()


def test_another_user_cannot_replay_my_key(server: Server) -> None:
    _, alice = server.new_user("PlatformAdmin")
    _, bob = server.new_user("PlatformAdmin")
    fid = echo_function(alice, public=True)
    stub = _teaclave_stub(server)
    request = pb.CreateTaskRequest(function_id=fid, executor="builtin",
                                   function_arguments='{"message": "mine"}')
    mine = stub.CreateTask(request, metadata=[*_session(alice), ("idempotency-key", "shared-k1")],
                           timeout=10).task_id
    theirs = stub.CreateTask(request, metadata=[*_session(bob), ("idempotency-key", "shared-k1")],
                             timeout=10).task_id
    assert mine != theirs
    with pytest.raises(ClientError):
        bob.get_task(mine)  # and learns nothing of mine


def test_the_sdk_retries_a_lost_answer_without_duplicating(server: Server) -> None:
    user, plain = server.new_user("PlatformAdmin")
    password = "pw-" + user
    pem = (server.data_dir / "api-cert.pem").read_bytes()
    lose = _LoseFirstAnswer({"RegisterFunction", "RegisterInputFile", "CreateTask"})
    front = grpc.intercept_channel(_channel("127.0.0.1", server.ports["frontend"], pem), lose)
    client = Client(_channel("127.0.0.1", server.ports["authentication"], pem), front)
    client.login(user, password)
    functions_before = len(plain.list_functions(user)[0])
    fid = echo_function(client)
    task = client.create_task(fid, {"message": "hi"}, executor="builtin")
    assert len(plain.list_functions(user)[0]) == functions_before + 1
    assert plain.list_tasks(1000).count(task) == 1
    assert len(plain.list_tasks(1000)) == 1
    sent = {m: [k for method, k in lose.sent if method == m] for m in ("RegisterFunction",
                                                                      "CreateTask")}
    for method, keys in sent.items():  # two attempts, one key
        assert len(keys) == 2 and keys[0] == keys[1] and len(keys[0]) >= 8, (method, keys)
    client.close()


# -- storage outages --------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs of its own (we are root, as CI is): a disk that can fill up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", str(mount)],
                   check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path) -> Path:
    """Write zeros until not one more byte fits."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        chunk = 1 << 20
        while chunk:
            try:
                os.write(fd, bytes(chunk))
            except OSError as e:
                assert e.errno == errno.ENOSPC
                chunk //= 2
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_answers_resource_exhausted_and_recovers(small_disk: Path) -> None:
    s = Server(small_disk / "data", workers=0).start()
    try:
        _, client = s.new_user("PlatformAdmin")
        fid = echo_function(client, public=True)
        filler = _fill(small_disk)
        for _ in range(5):
            with pytest.raises(ClientError) as e:
                client.create_task(fid, {"message": "x"}, executor="builtin")
            assert e.value.code == "RESOURCE_EXHAUSTED", e.value
            assert e.value.message == "the database has no space left"
            assert e.value.reason == "STORAGE_FULL"
        filler.unlink()
        task = client.create_task(fid, {"message": "x"}, executor="builtin")
        assert client.get_task(task).status_name
    finally:
        s.stop()
    assert s.log_path is not None
    log = s.log_path.read_text()
    assert "Traceback" not in log and "INTERNAL" not in log
    assert 1 <= log.count("StorageFull") <= 3  # one line per 10 s, not one per call


def test_a_task_running_while_the_disk_is_full_ends_once_space_returns(
        small_disk: Path) -> None:
    """Issue 12's full-disk case: while nothing can be written, the worker's lease
    renewals fail; once space returns, a lease that lapsed meanwhile is not renewed
    again: the task ends (Executor Timeout) within the lease timeout, not left Running."""
    lease_s = 3.0
    s = Server(small_disk / "data", workers=1, executor_timeout=lease_s).start()
    try:
        admin = s.admin()
        tid = start_endless_task(admin)  # Running, renewing its lease
        filler = _fill(small_disk)
        time.sleep(lease_s + 3)  # the lease lapses while no write can land
        filler.unlink()
        freed = time.monotonic()
        task = admin.wait(tid, 30)
        ended = time.monotonic() - freed
        assert (task.status, task.reason) == (TaskStatus.FAILED,
                                              "Runtime Error: Executor Timeout"), task
        assert ended < lease_s + 3.0, ended  # a reaper round or two, not minutes
        fid = echo_function(admin)  # and the platform works on
        t2 = admin.create_task(fid, {"message": "after"}, executor="builtin")
        admin.invoke_task(t2)
        assert admin.wait(t2, 30).return_value == b"after"
    finally:
        s.stop()
    assert s.log_path is not None
    assert "Traceback" not in s.log_path.read_text()
