"""Mutual attestation between roles (issue 12 item 2): who may NOT do what.

Against a real ``confide serve``: a node enrolled for another role calling the
scheduler, a worker acting for another executor, a revoked node (enrolling
again, or calling with its still-valid certificate) and a node with an
unlisted measurement are each refused with a status naming the cause, and each
refusal is in the audit log.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

import confide
from confide.attestation.sim import SimAttester
from confide.execution._enrol import EnrolmentRefused, NodeCredentials, enrol
from confide.keys import service_dns_name
from confide.rpc._gen import confide_v1_pb2 as v1
from confide.rpc._gen import confide_v1_pb2_grpc as v1_grpc

from ._server import Server


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("roles-policy") / "data", workers=0).start(timeout=90)
    yield s
    s.stop()


def _enrol(s: Server, node_id: str, services: tuple[str, ...],
           package_root: Path | None = None) -> NodeCredentials:
    attester = SimAttester(s.data_dir / "sim-attester", "sgx", package_root=package_root)
    return enrol(key_service=f"127.0.0.1:{s.ports['keys']}", node_id=node_id,
                 attester=attester, ca_pem=None, clock=_now, services=services)


def _scheduler(s: Server, node: NodeCredentials) -> v1_grpc.SchedulerStub:
    creds = grpc.ssl_channel_credentials(root_certificates=node.ca_pem,
                                         private_key=node.key_pem, certificate_chain=node.cert_pem)
    channel = grpc.secure_channel(f"127.0.0.1:{s.ports['scheduler']}", creds, options=[
        ("grpc.ssl_target_name_override", service_dns_name("scheduler")),
        ("grpc.use_local_subchannel_pool", 1)])
    return v1_grpc.SchedulerStub(channel)


def _pull(stub: v1_grpc.SchedulerStub, executor_id: str) -> v1.PullTaskResponse:
    response: v1.PullTaskResponse = stub.PullTask(
        v1.PullTaskRequest(executor_id=executor_id, wait_ms=0), timeout=10)
    return response


def _refused(call: object, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.RpcError) as e:
        call()  # type: ignore[operator]
    assert e.value.code() == code, e.value
    return str(e.value.details())


def _audited(s: Server, node_id: str, words: str, timeout: float = 10.0) -> None:
    """The audit log holds a failed entry by ``node:<node_id>`` whose message has ``words``."""
    deadline = time.monotonic() + timeout
    with s.admin() as admin:
        while True:
            entries = admin.query_audit_logs(f'message:"{words}"', 100)
            if any(e.user == f"node:{node_id}" and not e.result for e in entries):
                return
            assert time.monotonic() < deadline, [(e.user, e.message) for e in entries]
            time.sleep(0.2)


def _confide(*args: str) -> subprocess.CompletedProcess[str]:
    src = str(Path(confide.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src}
    return subprocess.run([sys.executable, "-m", "confide", *args], capture_output=True,
                          text=True, env=env, timeout=60)


def test_an_execution_node_may_pull(server: Server) -> None:
    node = _enrol(server, "worker-ok", ("execution",))
    assert _pull(_scheduler(server, node), "worker-ok").has_task is False


def test_a_frontend_node_may_not_call_the_scheduler(server: Server) -> None:
    node = _enrol(server, "frontend-node", ("frontend",))
    stub = _scheduler(server, node)
    message = _refused(lambda: _pull(stub, "frontend-node"), grpc.StatusCode.PERMISSION_DENIED)
    assert message == "role frontend may not call /confide.v1.Scheduler/PullTask"
    message = _refused(lambda: stub.Heartbeat(v1.HeartbeatRequest(
        executor_id="frontend-node", task_id="t"), timeout=10),
        grpc.StatusCode.PERMISSION_DENIED)
    assert message == "role frontend may not call /confide.v1.Scheduler/Heartbeat"
    _audited(server, "frontend-node", "internal call refused role frontend may not call")


def test_a_worker_may_not_act_for_another_executor(server: Server) -> None:
    node = _enrol(server, "worker-a", ("execution",))
    message = _refused(lambda: _pull(_scheduler(server, node), "worker-b"),
                       grpc.StatusCode.PERMISSION_DENIED)
    assert message == "executor id worker-b is not the caller's (worker-a)"
    _audited(server, "worker-a", "is not the caller's")


def test_a_revoked_node_is_refused_enrolment_and_calls(server: Server) -> None:
    node = _enrol(server, "host-r/executor-1", ("execution",))
    stub = _scheduler(server, node)
    assert _pull(stub, "host-r/executor-1").has_task is False
    out = _confide("node", "revoke", "host-r", "--reason", "host decommissioned",
                   "--data-dir", str(server.data_dir))
    assert out.returncode == 0, out
    assert "revoked host-r" in out.stdout
    listed = _confide("node", "revoked", "--json", "--data-dir", str(server.data_dir))
    assert [r["node_id"] for r in json.loads(listed.stdout)] == ["host-r"]
    # Its certificate is still valid; its calls are refused within the cache time.
    deadline = time.monotonic() + 10
    while True:
        try:
            _pull(stub, "host-r/executor-1")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
            assert e.details() == "node host-r/executor-1 is revoked"
            break
        assert time.monotonic() < deadline, "a revoked node still pulls"
        time.sleep(0.2)
    _audited(server, "host-r/executor-1", "is revoked")
    with pytest.raises(EnrolmentRefused, match="node-revoked"):
        _enrol(server, "host-r/executor-2", ("execution",))
    _audited(server, "host-r/executor-2", "enrolment refused node revoked")
    # Another host is not affected (a prefix is a whole path element).
    assert _pull(_scheduler(server, _enrol(server, "host-rx/executor-1", ("execution",))),
                 "host-rx/executor-1").has_task is False


def test_revoke_refuses_a_bad_node_id(server: Server) -> None:
    out = _confide("node", "revoke", "x" * 200, "--data-dir", str(server.data_dir))
    assert out.returncode == 1
    assert "node id must be 1..128 printable characters" in out.stderr + out.stdout


def test_a_node_with_an_unlisted_measurement_is_refused_and_audited(
        server: Server, tmp_path: Path) -> None:
    other = tmp_path / "other-build"
    other.mkdir()
    (other / "__init__.py").write_text("# not the audited code\n")
    with pytest.raises(EnrolmentRefused, match="not listed for role scheduler"):
        _enrol(server, "rogue-scheduler", ("scheduler",), package_root=other)
    _audited(server, "rogue-scheduler", "enrolment refused measurement not listed")


def test_a_node_asking_for_an_unknown_role_is_refused(server: Server) -> None:
    with pytest.raises(EnrolmentRefused, match="unknown-role"):
        _enrol(server, "odd-node", ("execution", "storage"))
    _audited(server, "odd-node", "unknown role")


def test_a_worker_refuses_a_scheduler_whose_certificate_names_another_role(
        server: Server) -> None:
    """The other direction: a node enrolled as frontend cannot pose as the scheduler."""
    from concurrent import futures

    impostor = _enrol(server, "impostor", ("frontend",))
    fake = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    v1_grpc.add_SchedulerServicer_to_server(v1_grpc.SchedulerServicer(), fake)
    port = fake.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials(
        [(impostor.key_pem, impostor.cert_pem)], root_certificates=impostor.ca_pem,
        require_client_auth=True))
    fake.start()
    try:
        worker = _enrol(server, "honest-worker", ("execution",))
        impostor_server = Server(server.data_dir, ports={**server.ports, "scheduler": port})
        message = _refused(lambda: _pull(_scheduler(impostor_server, worker), "honest-worker"),
                           grpc.StatusCode.UNAVAILABLE)  # the TLS handshake fails
        assert "ssl" in message.lower() or "handshake" in message.lower() or \
            "failed to connect" in message.lower(), message
    finally:
        fake.stop(None)
