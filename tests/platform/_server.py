"""Start ``confide serve`` the way the README does, in a subprocess, on free ports."""

from __future__ import annotations

import collections
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import confide
from confide.client import Client

ADMIN_PASSWORD = "teaclave"


def free_port() -> int:
    """A port free now, below the ephemeral range, in this xdist worker's own block.

    A port the kernel hands out (bind to 0) can be taken as the source port of any
    outgoing connection before the server binds it (seen in CI: "Address already in
    use"); ports below the ephemeral range never are. Each worker draws from its own
    block, and never returns one of its last 512 ports (a test may draw several before
    its first server binds them).
    """
    low, high = _worker_block()
    for _ in range(500):
        port = random.randrange(low, high)
        if port in _recent:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:  # a server of an earlier test still holds it, or another process
                continue
        _recent.append(port)
        return port
    raise RuntimeError(f"no free port in {low}..{high}")


_recent: collections.deque[int] = collections.deque(maxlen=512)


def _worker_block() -> tuple[int, int]:
    try:
        ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral = 32768
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) % 4 if worker[2:].isdigit() else 0
    size = min(3000, (ephemeral - 1024) // 4)
    low = ephemeral - 4 * size + index * size
    return low, low + size


@dataclass
class Server:
    data_dir: Path
    workers: int = 2
    executor_timeout: float = 30.0
    extra_env: dict[str, str] = field(default_factory=dict)
    database_url: str | None = None
    extra_args: list[str] = field(default_factory=list)  # more `confide serve` options
    relative: bool = False  # pass --data-dir relative to the server's working directory
    proc: subprocess.Popen[bytes] | None = None
    ports: dict[str, int] = field(default_factory=dict)
    log_path: Path | None = None

    def start(self, timeout: float = 30.0) -> Server:
        if not self.ports:
            self.ports = {"authentication": free_port(), "frontend": free_port(),
                          "scheduler": free_port(), "blobs": free_port(),
                          "keys": free_port()}
        cert = self.data_dir / "api-cert.pem"
        cert.unlink(missing_ok=True)
        data_arg = self.data_dir.name if self.relative else str(self.data_dir)
        args = [sys.executable, "-m", "confide", "serve", "--data-dir", data_arg,
                "--authentication-port", str(self.ports["authentication"]),
                "--frontend-port", str(self.ports["frontend"]),
                "--scheduler-port", str(self.ports["scheduler"]),
                "--blob-port", str(self.ports["blobs"]),
                "--key-service-port", str(self.ports["keys"]),
                "--workers", str(self.workers), "--executor-timeout", str(self.executor_timeout)]
        if self.database_url:
            args += ["--database-url", self.database_url]
        args += self.extra_args
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"
        log = open(self.log_path, "ab")
        # The server runs the confide this test imported (a worktree's src/, not
        # whatever an editable install points at): cwd moves, so the path is absolute.
        src = str(Path(confide.__file__).resolve().parents[1])
        pythonpath = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "PYTHONPATH": pythonpath, **self.extra_env}
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     cwd=self.data_dir.parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            if cert.exists() and _listening(self.ports["frontend"]):
                return self
            time.sleep(0.05)
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL the server and its workers (a crash)."""
        for pid in self.worker_pids():
            _kill(pid)
        self.stop(signal.SIGKILL)

    def worker_pids(self) -> list[int]:
        if self.proc is None:
            return []
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.proc.pid:
                pids.append(int(entry.name))
        return pids

    def client(self, user: str | None = None, password: str | None = None) -> Client:
        c = Client.connect("127.0.0.1", server_cert=self.data_dir / "api-cert.pem",
                           authentication_port=self.ports["authentication"],
                           frontend_port=self.ports["frontend"])
        if user is not None:
            c.login(user, password or "")
        return c

    def admin(self) -> Client:
        return self.client("admin", ADMIN_PASSWORD)

    def new_user(self, role: str, attribute: str = "", prefix: str = "u") -> tuple[str, Client]:
        """Register a fresh user with ``role`` and return (id, logged-in client)."""
        user_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
        with self.admin() as admin:
            admin.register_user(user_id, "pw-" + user_id, role, attribute)
        return user_id, self.client(user_id, "pw-" + user_id)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
