"""Roles in separate processes (issue 12 items 1-2), on one host over loopback.

``confide serve --services …`` starts only the listed roles; a node without the
key service joins through it with its attested evidence; ``confide worker``
runs workers that enrol over the network. The multi-host version (network
namespaces, PostgreSQL) is tests/multihost/.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import confide
from confide.client import TaskStatus

from ._helpers import echo_function
from ._server import Server, _listening, free_port


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    src = str(Path(confide.__file__).resolve().parents[1])
    pythonpath = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": pythonpath, **(extra or {})}


class _Proc:
    """One more confide process (a node or a worker host), logging to a file."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "confide", *args], stdout=out,
                                         stderr=subprocess.STDOUT, env=_env(env),
                                         cwd=log.parent)

    def text(self) -> str:
        """The log so far, whitespace runs (rich wraps lines) as one space."""
        return " ".join(self.log.read_text(errors="replace").split())

    def wait_for(self, predicate: object, timeout: float = 40.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if callable(predicate) and predicate():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"exited {self.proc.returncode}: {self.text()[-3000:]}")
            time.sleep(0.1)
        raise AssertionError(f"timed out: {self.text()[-3000:]}")

    def exit_code(self, timeout: float = 60.0) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def procs() -> Iterator[list[_Proc]]:
    started: list[_Proc] = []
    yield started
    for p in started:
        p.stop()


def _sim_copy(server: Server, dest: Path) -> Path:
    """What an operator copies to another sim host: the sim PKI stand-in."""
    return _sim_copy_dir(server.data_dir, dest)


def _sim_copy_dir(data_dir: Path, dest: Path) -> Path:
    shutil.copytree(data_dir / "sim-attester", dest)
    return dest


def _run_echo(server: Server, message: str = "across processes") -> None:
    fid = echo_function(server.admin())
    _, alice = server.new_user("DataOwner", "org1")
    tid = alice.create_task(fid, {"message": message}, executor="builtin")
    alice.invoke_task(tid)
    task = alice.wait(tid, 30)
    assert task.status == TaskStatus.FINISHED, task
    assert task.return_value == message.encode()


def test_scheduler_node_joins_through_the_key_service_and_runs_tasks(
        tmp_path: Path, procs: list[_Proc]) -> None:
    front = Server(tmp_path / "front", workers=0,
                   extra_args=["--services", "keys,authentication,frontend"]).start()
    try:
        assert not _listening(front.ports["scheduler"])  # not this node's role
        sched_port = free_port()
        node = _Proc(["serve", "--data-dir", str(tmp_path / "sched"), "--services", "scheduler",
                      "--keys", f"127.0.0.1:{front.ports['keys']}",
                      "--database-url", f"sqlite:///{front.data_dir / 'confide.db'}",
                      "--sim-attester", str(_sim_copy(front, tmp_path / "sim")),
                      "--scheduler-port", str(sched_port), "--workers", "1",
                      "--authentication-port", str(free_port()),
                      "--frontend-port", str(free_port())], tmp_path / "sched.log")
        procs.append(node)
        node.wait_for(lambda: _listening(sched_port))
        assert "joined the platform through" in node.text()
        assert "enrolled node" in front.log_path.read_text()  # type: ignore[union-attr]
        _run_echo(front)
    finally:
        front.stop()


def test_a_worker_host_moves_to_another_scheduler_node_when_its_own_dies(
        tmp_path: Path, procs: list[_Proc]) -> None:
    """Several scheduler nodes: a worker host given both uses the first that answers
    and, after a kill -9 of that node, the other (leases live in the database)."""
    front = Server(tmp_path / "front", workers=0,
                   extra_args=["--services", "keys,authentication,frontend"]).start()
    try:
        sim = _sim_copy(front, tmp_path / "sim")
        nodes, ports = [], []
        for name in ("sched-a", "sched-b"):
            port = free_port()
            node = _Proc(["serve", "--data-dir", str(tmp_path / name), "--services", "scheduler",
                          "--keys", f"127.0.0.1:{front.ports['keys']}",
                          "--database-url", f"sqlite:///{front.data_dir / 'confide.db'}",
                          "--sim-attester", str(sim), "--scheduler-port", str(port),
                          "--workers", "0", "--authentication-port", str(free_port()),
                          "--frontend-port", str(free_port())], tmp_path / f"{name}.log")
            procs.append(node)
            node.wait_for(lambda port=port: _listening(port))
            nodes.append(node)
            ports.append(port)
        host = _Proc(["worker", "--scheduler", ",".join(f"127.0.0.1:{p}" for p in ports),
                      "--keys", f"127.0.0.1:{front.ports['keys']}", "--sim-attester", str(sim),
                      "--name", "host-w", "--workers", "1"], tmp_path / "worker.log")
        procs.append(host)
        host.wait_for(lambda: "enrolled as host-w/executor-" in host.text())
        _run_echo(front, "through the first scheduler node")
        nodes[0].proc.kill()  # kill -9 of the node the worker pulls from
        nodes[0].proc.wait()
        _run_echo(front, "through the second scheduler node")
        assert host.proc.poll() is None
    finally:
        front.stop()


def test_worker_host_enrols_over_the_network_and_pulls(
        tmp_path: Path, procs: list[_Proc]) -> None:
    server = Server(tmp_path / "data", workers=0).start()
    try:
        host = _Proc(["worker", "--scheduler", f"127.0.0.1:{server.ports['scheduler']}",
                      "--keys", f"127.0.0.1:{server.ports['keys']}",
                      "--sim-attester", str(_sim_copy(server, tmp_path / "sim")),
                      "--name", "host-w", "--workers", "1"], tmp_path / "worker.log")
        procs.append(host)
        host.wait_for(lambda: "enrolled as host-w/executor-" in host.text())
        _run_echo(server)
        # Revoking the host: its worker is refused, exits, and its successor cannot enrol.
        out = subprocess.run([sys.executable, "-m", "confide", "node", "revoke", "host-w",
                              "--data-dir", str(server.data_dir)], capture_output=True,
                             text=True, env=_env(), timeout=60)
        assert out.returncode == 0, out
        host.wait_for(lambda: "the scheduler refused this executor (UNAUTHENTICATED: node "
                              "host-w/executor-" in host.text())
        host.wait_for(lambda: "enrolment refused: node-revoked" in host.text())
        assert host.proc.poll() is None  # the host keeps supervising (with backoff)
    finally:
        server.stop()


def _keys_node(tmp_path: Path, name: str, port: int, *extra: str) -> _Proc:
    return _Proc(["serve", "--data-dir", str(tmp_path / name), "--services", "keys",
                  "--key-service-port", str(port), "--workers", "0", *extra],
                 tmp_path / f"{name}.log")


def test_a_further_key_service_serves_enrolment_when_the_first_is_gone(
        tmp_path: Path, procs: list[_Proc]) -> None:
    """No single key service: a second one joins through the first and keeps the
    platform secret sealed to its own data dir; nodes and workers given both
    addresses enrol through whichever answers, and it restarts alone."""
    first_port, second_port = free_port(), free_port()
    first = _keys_node(tmp_path, "keys-a", first_port)
    procs.append(first)
    first.wait_for(lambda: _listening(first_port))
    db = f"sqlite:///{tmp_path / 'keys-a' / 'confide.db'}"
    sim = _sim_copy_dir(tmp_path / "keys-a", tmp_path / "sim")
    replica_args = ("--keys", f"127.0.0.1:{first_port}", "--database-url", db,
                    "--sim-attester", str(sim))
    second = _keys_node(tmp_path, "keys-b", second_port, *replica_args)
    procs.append(second)
    second.wait_for(lambda: _listening(second_port))
    assert f"joined the platform through 127.0.0.1:{first_port}" in second.text()
    assert (tmp_path / "keys-b" / "root-secret.sealed").exists()

    first.proc.kill()  # kill -9: the first key service is gone for good
    first.proc.wait()
    both = f"127.0.0.1:{first_port},127.0.0.1:{second_port}"
    front = Server(tmp_path / "front", workers=0, extra_args=[
        "--services", "authentication,frontend,scheduler", "--keys", both,
        "--database-url", db, "--sim-attester", str(sim)]).start(timeout=90)
    try:
        assert f"joined the platform through 127.0.0.1:{second_port}" in " ".join(
            front.log_path.read_text().split())  # type: ignore[union-attr]
        host = _Proc(["worker", "--scheduler", f"127.0.0.1:{front.ports['scheduler']}",
                      "--keys", both, "--sim-attester", str(sim), "--name", "host-w",
                      "--workers", "1"], tmp_path / "worker.log")
        procs.append(host)
        host.wait_for(lambda: "enrolled as host-w/executor-" in host.text())
        _run_echo(front, "through the second key service")

        # Alone: no listed key service answers, so it starts from its sealed secret
        # and still serves enrolments.
        second.stop()
        again = _keys_node(tmp_path, "keys-b", second_port, *replica_args)
        procs.append(again)
        again.wait_for(lambda: _listening(second_port))
        assert "serving the keys role with the platform secret sealed in" in again.text()
        late = _Proc(["worker", "--scheduler", f"127.0.0.1:{front.ports['scheduler']}",
                      "--keys", both, "--sim-attester", str(sim), "--name", "host-late",
                      "--workers", "1"], tmp_path / "late.log")
        procs.append(late)
        late.wait_for(lambda: "enrolled as host-late/executor-" in late.text())

        # Revoked while alone: with no peer to check it, it checks the list itself.
        again.stop()
        out = subprocess.run([sys.executable, "-m", "confide", "node", "revoke",
                              f"{socket.gethostname()}/keys", "--data-dir",
                              str(tmp_path / "keys-b"), "--database-url", db],
                             capture_output=True, text=True, env=_env(), timeout=60)
        assert out.returncode == 0, out
        revoked = _keys_node(tmp_path, "keys-b", second_port, *replica_args)
        assert revoked.exit_code() == 2
        assert "cannot serve the keys role" in revoked.text()
        assert "is revoked" in revoked.text()
    finally:
        front.stop()


def test_a_key_service_of_another_platform_cannot_become_a_replica(
        tmp_path: Path, procs: list[_Proc]) -> None:
    first_port = free_port()
    first = _keys_node(tmp_path, "keys-a", first_port)
    procs.append(first)
    first.wait_for(lambda: _listening(first_port))
    other_port = free_port()
    other = _keys_node(tmp_path, "keys-other", other_port)  # a platform of its own
    procs.append(other)
    other.wait_for(lambda: _listening(other_port))
    other.stop()
    joining = _keys_node(tmp_path, "keys-other", other_port, "--keys",
                         f"127.0.0.1:{first_port}", "--database-url",
                         f"sqlite:///{tmp_path / 'keys-a' / 'confide.db'}", "--sim-attester",
                         str(_sim_copy_dir(tmp_path / "keys-a", tmp_path / "sim")))
    assert joining.exit_code() == 2
    assert "belongs to another platform" in joining.text()


def test_a_node_endorsed_by_a_report_service_it_cannot_verify_does_not_start(
        tmp_path: Path, procs: list[_Proc]) -> None:
    """--attestation-service-ca is checked: a report service whose certificate does not
    chain to the given AS root (here another platform's) endorses nothing."""
    reports = free_port()
    front = Server(tmp_path / "front", workers=0, extra_args=[
        "--services", "keys,authentication,frontend",
        "--attestation-service-port", str(reports)]).start()
    other = Server(tmp_path / "other", workers=0).start()
    other.stop()
    try:
        node = _Proc(["serve", "--data-dir", str(tmp_path / "fe2"), "--services", "frontend",
                      "--keys", f"127.0.0.1:{front.ports['keys']}",
                      "--database-url", f"sqlite:///{front.data_dir / 'confide.db'}",
                      "--sim-attester", str(_sim_copy(front, tmp_path / "sim")),
                      "--attestation-service", f"127.0.0.1:{reports}",
                      "--attestation-service-ca", str(other.data_dir / "as-root-ca.pem"),
                      "--frontend-port", str(free_port()), "--blob-port", str(free_port())],
                     tmp_path / "fe2.log")
        assert node.exit_code() == 2
        assert f"the attestation report service at 127.0.0.1:{reports} did not endorse" in \
            node.text()
    finally:
        front.stop()


def test_node_with_an_unlisted_measurement_cannot_join(
        tmp_path: Path, procs: list[_Proc]) -> None:
    server = Server(tmp_path / "data", workers=0).start()
    other = tmp_path / "other-build"
    other.mkdir()
    (other / "__init__.py").write_text("# not the audited code\n")
    try:
        sim = _sim_copy(server, tmp_path / "sim")
        node = _Proc(["serve", "--data-dir", str(tmp_path / "rogue"), "--services", "scheduler",
                      "--keys", f"127.0.0.1:{server.ports['keys']}",
                      "--database-url", f"sqlite:///{server.data_dir / 'confide.db'}",
                      "--sim-attester", str(sim), "--scheduler-port", str(free_port()),
                      "--workers", "0"], tmp_path / "rogue.log",
                     env={"CONFIDE_SIM_MEASURE_ROOT": str(other)})
        assert node.exit_code() == 2
        assert "cannot join the platform" in node.text()
        assert "not listed for role scheduler" in node.text()
        host = _Proc(["worker", "--scheduler", f"127.0.0.1:{server.ports['scheduler']}",
                      "--keys", f"127.0.0.1:{server.ports['keys']}", "--sim-attester", str(sim),
                      "--name", "rogue-w", "--workers", "1"], tmp_path / "rogue-worker.log",
                     env={"CONFIDE_SIM_MEASURE_ROOT": str(other)})
        procs.append(host)
        deadline = time.monotonic() + 30
        while "not listed for role execution" not in host.text():
            assert time.monotonic() < deadline, host.text()[-3000:]
            time.sleep(0.2)
        assert "enrolled as" not in host.text()
    finally:
        server.stop()


@pytest.mark.parametrize(("args", "message"), [
    (["--services", "frontend,bogus"], "unknown role bogus"),
    (["--services", "scheduler"], "give --keys HOST:PORT"),
    (["--services", "scheduler", "--keys", "nowhere"], "--keys must be HOST:PORT"),
    (["--services", "keys", "--keys", "127.0.0.1:1,nowhere"],
     "--keys must be HOST:PORT[,HOST:PORT...], not 'nowhere'"),
    (["--services", "frontend", "--keys", "127.0.0.1:1", "--attestation-service-port", "1"],
     "only a node with the keys role serves the attestation report service"),
    (["--attestation-service", "127.0.0.1:1"],
     "--attestation-service and --attestation-service-ca go together"),
    (["--attestation-service", "nowhere", "--attestation-service-ca", "/dev/null"],
     "--attestation-service must be HOST:PORT"),
    (["--attestation-service", "127.0.0.1:1", "--attestation-service-ca", "/dev/null"],
     "not a PEM certificate"),
])
def test_role_options_are_checked(tmp_path: Path, args: list[str], message: str) -> None:
    out = subprocess.run([sys.executable, "-m", "confide", "serve", "--data-dir",
                          str(tmp_path / "d"), *args], capture_output=True, text=True,
                         env=_env(), timeout=60)
    assert out.returncode == 2, out
    assert message in " ".join((out.stdout + out.stderr).split())


@pytest.mark.parametrize(("args", "message"), [
    (["--scheduler", "x", "--keys", "h:1"], "--scheduler must be HOST:PORT"),
    (["--scheduler", "a:1,b:1", "--keys", "h:1"], "--scheduler: several addresses must be IP"),
    (["--scheduler", "h:1", "--keys", "h:1", "--name", "a b"], "--name must be"),
    (["--scheduler", "h:1", "--keys", "h:1", "--workers", "0"], "--workers must be"),
    (["--scheduler", "h:1", "--keys", "h:1,h"], "--keys must be HOST:PORT[,HOST:PORT...]"),
])
def test_worker_options_are_checked(tmp_path: Path, args: list[str], message: str) -> None:
    sim = tmp_path / "sim"
    from confide.attestation.sim import SimAttester

    SimAttester(sim, "sgx")
    out = subprocess.run([sys.executable, "-m", "confide", "worker", "--sim-attester", str(sim),
                          *args], capture_output=True, text=True, env=_env(), timeout=60)
    assert out.returncode == 2, out
    assert message in " ".join((out.stdout + out.stderr).split())


def test_worker_without_sim_state_is_told_what_to_copy(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "confide", "worker", "--scheduler", "h:1",
                          "--keys", "h:2", "--sim-attester", str(tmp_path / "none")],
                         capture_output=True, text=True, env=_env(), timeout=60)
    assert out.returncode == 2
    assert "copy the platform's <data>/sim-attester" in " ".join(out.stderr.split())


def test_the_scheduler_certificate_is_renewed_before_it_expires(tmp_path: Path) -> None:
    """Mutual TLS keeps working across the renewal of the scheduler's node certificate."""
    import datetime as dt

    import grpc

    from confide.attestation.sim import SimAttester
    from confide.execution._enrol import enrol
    from confide.node import Platform, ServerConfig
    from confide.rpc._gen import confide_v1_pb2 as v1

    from .test_roles_policy import _scheduler

    platform = Platform(ServerConfig(data_dir=tmp_path / "data", authentication_port=0,
                                     frontend_port=0, scheduler_port=0, key_service_port=0,
                                     blob_port=None, workers=0))
    platform.start()
    try:
        now = dt.datetime.now(dt.UTC)
        assert not platform._scheduler_renewal_due(now)
        assert platform._scheduler_renewal_due(now + dt.timedelta(days=4))  # half of 7 days
        node = enrol(key_service=f"127.0.0.1:{platform.ports['keys']}", node_id="w-renew",
                     attester=SimAttester(tmp_path / "data" / "sim-attester", "sgx"),
                     ca_pem=None, clock=lambda: dt.datetime.now(dt.UTC))
        server = Server(tmp_path / "data", ports=dict(platform.ports))
        request = v1.PullTaskRequest(executor_id="w-renew", wait_ms=0)
        assert _scheduler(server, node).PullTask(request, timeout=10).has_task is False
        assert platform._sched_creds is not None
        before = platform._sched_creds.pair.cert_pem
        platform.renew_scheduler_certificate()
        assert platform._sched_creds.pair.cert_pem != before
        # A new connection gets the new certificate and is still mutually authenticated.
        assert _scheduler(server, node).PullTask(request, timeout=10).has_task is False
        creds = grpc.ssl_channel_credentials(root_certificates=node.ca_pem)  # no client cert
        with grpc.secure_channel(f"127.0.0.1:{platform.ports['scheduler']}", creds, options=[
                ("grpc.ssl_target_name_override", "scheduler.svc.confide.internal"),
                ("grpc.use_local_subchannel_pool", 1)]) as channel:
            from confide.rpc._gen import confide_v1_pb2_grpc as v1_grpc

            with pytest.raises(grpc.RpcError) as e:
                v1_grpc.SchedulerStub(channel).PullTask(request, timeout=5)
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE  # the handshake is refused
    finally:
        platform.stop()
