"""Stopping ``confide serve`` (docs/operations.md, "Stopping and restarting"; issue 13 item 5).

Through the command an operator runs and signals: on SIGTERM readiness goes
NOT_SERVING first, new client RPCs get UNAVAILABLE naming the shutdown, no new
task is leased (queued ones run after the restart), a running task may finish
within the grace period and its result is kept, one still running after it
fails with a reason naming the shutdown, a second SIGTERM ends the wait, the
server exits 0 and leaves no worker or sandbox process behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from confide.client import Client, ClientError, TaskStatus
from confide.client._endpoints import never_sent
from confide.client._errors import from_rpc_error
from confide.client._sdk import _channel
from confide.rpc._gen import teaclave_frontend_service_pb2 as pb
from confide.rpc._gen import teaclave_frontend_service_pb2_grpc as pb_grpc

from ._drain import (
    NOT_SERVING,
    PY_SLEEP,
    SHUTTING_DOWN,
    alive,
    descendants,
    exit_code,
    health_channel,
    health_status,
    wait_not_serving,
)
from ._helpers import echo_function, start_endless_task, wait_for_status
from ._server import Server


def _nothing_running(client: Client, task_ids: list[str]) -> None:
    for tid in task_ids:
        assert client.get_task(tid).status != TaskStatus.RUNNING, tid


@pytest.fixture
def sleeper(tmp_path: Path) -> Server:
    """One worker with one slot: a second task waits queued behind the first."""
    return Server(tmp_path / "data", workers=1, extra_args=["--worker-slots", "1",
                                                            "--shutdown-grace", "30"])


def test_sigterm_lets_the_running_task_finish_and_keeps_queued_ones_for_the_restart(
        sleeper: Server) -> None:
    s = sleeper.start()
    try:
        admin = s.admin()
        slow = admin.register_function("sleep", executor_type="python",
                                       payload=PY_SLEEP.encode())
        running = admin.create_task(slow, {}, executor="mesapy")
        admin.invoke_task(running)
        wait_for_status(admin, running, TaskStatus.RUNNING, timeout=30)
        queued = admin.create_task(echo_function(admin), {"message": "after"},
                                   executor="builtin")
        admin.invoke_task(queued)
        assert admin.get_task(queued).status == TaskStatus.STAGED
        assert s.proc is not None
        workers = set(s.worker_pids())
        deadline = time.monotonic() + 20
        while not (processes := descendants(s.proc.pid)) - workers:  # the task's sandbox
            assert time.monotonic() < deadline, "no sandbox under the worker"
            time.sleep(0.05)
        with health_channel(s) as health:
            assert health_status(health) != NOT_SERVING
            s.proc.send_signal(signal.SIGTERM)
            started = time.monotonic()
            wait_not_serving(health)  # readiness goes first
            # New client RPCs are refused at once with the reason, while the task still runs
            # (through a raw stub: the SDK resends a call refused this way, since the
            # reason proves nothing was done, until its retries run out).
            assert admin.user_id is not None and admin._token is not None
            stub = pb_grpc.TeaclaveFrontendStub(_channel(
                "127.0.0.1", s.ports["frontend"], (s.data_dir / "api-cert.pem").read_bytes()))
            with pytest.raises(grpc.RpcError) as raw:
                stub.CancelTask(pb.CancelTaskRequest(task_id=running), timeout=10,
                                metadata=[("id", admin.user_id), ("token", admin._token)])
            refusal = from_rpc_error(raw.value)
            assert (refusal.code, refusal.message, refusal.reason) == (
                "UNAVAILABLE", SHUTTING_DOWN, "SHUTTING_DOWN")
            assert never_sent(refusal)
            with pytest.raises(ClientError) as refused:
                s.client().login("admin", "teaclave")
            assert refused.value.code == "UNAVAILABLE"
        assert exit_code(s, 40) == 0
        assert time.monotonic() - started < 30  # it waited for the task, not the grace
        assert alive(processes) == set(), "a worker or sandbox outlived the server"
        s.start()
        admin = s.admin()
        done = admin.get_task(running)
        assert (done.status, done.return_value) == (TaskStatus.FINISHED, b"slept"), done.reason
        later = admin.wait(queued, 30)  # queued across the restart, then run
        assert (later.status, later.return_value) == (TaskStatus.FINISHED, b"after")
    finally:
        s.stop()


def test_a_task_longer_than_the_grace_fails_naming_the_shutdown(tmp_path: Path) -> None:
    s = Server(tmp_path / "data", workers=1, extra_args=["--shutdown-grace", "1"]).start()
    try:
        admin = s.admin()
        endless = start_endless_task(admin)
        assert s.proc is not None
        processes = descendants(s.proc.pid)
        started = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        assert exit_code(s, 30) == 0
        assert time.monotonic() - started < 15
        assert alive(processes) == set()
        s.start()
        admin = s.admin()
        task = admin.get_task(endless)
        assert (task.status, task.reason) == (
            TaskStatus.FAILED,
            "Runtime Error: Server Shutdown (still running after the 1 s shutdown grace period)")
        _nothing_running(admin, [endless])
    finally:
        s.stop()


def test_a_second_sigterm_ends_the_grace_period(tmp_path: Path) -> None:
    s = Server(tmp_path / "data", workers=1, extra_args=["--shutdown-grace", "600"]).start()
    try:
        admin = s.admin()
        endless = start_endless_task(admin)
        assert s.proc is not None
        processes = descendants(s.proc.pid)
        with health_channel(s) as health:
            s.proc.send_signal(signal.SIGTERM)
            wait_not_serving(health)
        time.sleep(1.0)  # draining: without a second signal it would wait 600 s
        assert s.proc.poll() is None
        started = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        assert exit_code(s, 30) == 0
        assert time.monotonic() - started < 15
        assert alive(processes) == set()
        s.start()
        task = s.admin().get_task(endless)
        assert task.status == TaskStatus.FAILED
        assert task.reason == ("Runtime Error: Server Shutdown (still running when a second "
                               "stop signal ended the shutdown grace period)")
    finally:
        s.stop()


def test_a_worker_lost_during_the_drain_is_not_replaced(tmp_path: Path) -> None:
    """Its task fails as lost, the other keeps its grace period; no worker is started."""
    s = Server(tmp_path / "data", workers=2,
               extra_args=["--worker-slots", "1", "--shutdown-grace", "600"]).start()
    try:
        admin = s.admin()
        tasks = [start_endless_task(admin), start_endless_task(admin)]  # one per worker
        assert s.proc is not None
        victim, survivor = s.worker_pids()
        with health_channel(s) as health:
            s.proc.send_signal(signal.SIGTERM)
            wait_not_serving(health)
        os.kill(victim, signal.SIGKILL)
        time.sleep(3.0)  # a replacement would be started within ~1 s
        assert s.proc.poll() is None  # still draining: one task runs on
        assert s.worker_pids() == [survivor]
        s.proc.send_signal(signal.SIGTERM)
        assert exit_code(s, 30) == 0
        s.start()
        reasons = sorted(str(s.admin().get_task(t).reason) for t in tasks)
        assert reasons[0].startswith("Runtime Error: Executor Lost"), reasons
        assert reasons[1].startswith("Runtime Error: Server Shutdown"), reasons
    finally:
        s.stop()


def test_ctrl_c_drains_too(tmp_path: Path) -> None:
    s = Server(tmp_path / "data", workers=1, extra_args=["--shutdown-grace", "0"]).start()
    try:
        admin = s.admin()
        endless = start_endless_task(admin)
        assert s.proc is not None
        s.proc.send_signal(signal.SIGINT)
        assert exit_code(s, 30) == 0
        s.start()
        task = s.admin().get_task(endless)
        assert (task.status, task.reason) == (
            TaskStatus.FAILED,
            "Runtime Error: Server Shutdown (still running after the 0 s shutdown grace period)")
    finally:
        s.stop()


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--shutdown-grace", "-1"], {}, "shutdown grace must be 0..3600 s: -1"),
    (["--shutdown-grace", "7200"], {}, "shutdown grace must be 0..3600 s: 7200"),
    ([], {"CONFIDE_SERVER__SHUTDOWN_GRACE_S": "soon"}, "server.shutdown_grace_s"),
])
def test_a_bad_shutdown_grace_is_refused_at_start(tmp_path: Path, args: list[str],
                                                  env: dict[str, str], message: str) -> None:
    r = subprocess.run([sys.executable, "-m", "confide", "serve", "--data-dir",
                        str(tmp_path / "d"), *args], capture_output=True, text=True,
                       timeout=60, env={**os.environ, **env})
    assert r.returncode == 2, r.stderr
    assert message in " ".join(r.stderr.split())


def test_the_grace_period_comes_from_the_configuration_file(tmp_path: Path) -> None:
    config = tmp_path / "confide.toml"
    config.write_text("[server]\nshutdown_grace_s = 2.5\n")
    shown = subprocess.run([sys.executable, "-m", "confide", "config", "show", "--config",
                            str(config)], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "shutdown_grace_s = 2.5" in shown.stdout
    s = Server(tmp_path / "data", workers=1, extra_args=["--config", str(config)]).start()
    try:
        admin = s.admin()
        endless = start_endless_task(admin)
        assert s.proc is not None
        s.proc.send_signal(signal.SIGTERM)
        assert exit_code(s, 30) == 0
        s.start()
        assert s.admin().get_task(endless).reason == (
            "Runtime Error: Server Shutdown (still running after the 2.5 s shutdown grace "
            "period)")
    finally:
        s.stop()
