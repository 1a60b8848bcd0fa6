"""Helpers of the shutdown tests (tests/platform/test_shutdown.py, tests/postgres)."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from confide.rpc import pin_target_name

from ._server import Server

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SHUTTING_DOWN = "the server is shutting down; retry once it is back"
PY_SLEEP = """
import time

def entrypoint(argv):
    time.sleep(3)
    return 'slept'
"""


def descendants(root: int) -> set[int]:
    """Every process under ``root`` (workers, their sandboxes), from the host's /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    """The ones still running (a zombie is not running)."""
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def health_channel(s: Server) -> grpc.Channel:
    pem = (s.data_dir / "api-cert.pem").read_bytes()
    return grpc.secure_channel(
        f"localhost:{s.ports['frontend']}", grpc.ssl_channel_credentials(pem),
        options=[("grpc.ssl_target_name_override", pin_target_name(pem, "localhost")),
                 ("grpc.use_local_subchannel_pool", 1)])


def health_status(channel: grpc.Channel) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return int(stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status)


def wait_not_serving(channel: grpc.Channel, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while health_status(channel) != NOT_SERVING:
        assert time.monotonic() < deadline, "still SERVING after SIGTERM"
        time.sleep(0.02)


def exit_code(s: Server, timeout: float) -> int:
    assert s.proc is not None
    code = s.proc.wait(timeout)
    s.proc = None
    return code
