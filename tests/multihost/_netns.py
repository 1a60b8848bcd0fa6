"""Hosts as network namespaces on one machine (root; iproute2).

A :class:`Topology` makes one namespace per host and a switch namespace with a
bridge; each host gets a veth pair to the bridge and an address in a private
``10.x.y.0/24`` chosen per run. Names carry a per-run id, so runs of other
helpers never collide. :meth:`Topology.close` kills every process started in
it (their whole process groups), then deletes the namespaces (which removes the
veths); it runs even when set-up failed half way.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
import uuid
from pathlib import Path

__all__ = ["Host", "Topology"]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


class Host:
    def __init__(self, topology: Topology, name: str, netns: str, address: str) -> None:
        self.topology = topology
        self.name = name
        self.netns = netns
        self.address = address
        self.procs: list[subprocess.Popen[bytes]] = []

    def popen(self, args: list[str], log: Path, env: dict[str, str] | None = None,
              user: str | None = None) -> subprocess.Popen[bytes]:
        """Start ``args`` in this host's namespace (its own process group), logging to ``log``."""
        prefix = ["ip", "netns", "exec", self.netns]
        if user is not None:
            prefix += ["runuser", "-u", user, "--"]
        with open(log, "ab") as out:
            proc = subprocess.Popen([*prefix, *args], stdout=out, stderr=subprocess.STDOUT,
                                    env=env, start_new_session=True)
        self.procs.append(proc)
        return proc

    def run(self, args: list[str], *, env: dict[str, str] | None = None,
            user: str | None = None, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        prefix = ["ip", "netns", "exec", self.netns]
        if user is not None:
            prefix += ["runuser", "-u", user, "--"]
        return subprocess.run([*prefix, *args], capture_output=True, text=True, env=env,
                              timeout=timeout)

    def kill_all(self) -> None:
        """SIGKILL every process group started here (a host lost at once)."""
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._reap()

    def _reap(self) -> None:
        """Wait (10 s at most each) for the processes started here once they were killed."""
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def netns_pids(self) -> set[int]:
        """Every process in this host's network namespace (``ip netns pids``)."""
        out = subprocess.run(["ip", "netns", "pids", self.netns], capture_output=True,
                             text=True, timeout=30)
        return {int(p) for p in out.stdout.split()}

    def descendants(self) -> list[int]:
        """Every live process started here and everything under them, from /proc
        (sandboxes in network namespaces of their own included), parents first."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(
                    int(entry.name))
        found: list[int] = []
        todo = [p.pid for p in self.procs if p.poll() is None]
        while todo:  # breadth first: a worker comes before its sandboxes
            pid = todo.pop(0)
            if pid not in found:
                found.append(pid)
                todo += children.get(pid, [])
        return found

    def kill_9(self) -> int:
        """SIGKILL every process of this host at once (a machine lost under load):
        its namespace's and everything started here, with their children. Returns
        how many were killed; the host's processes are forgotten."""
        # Parents first: a worker killed after its sandbox could still report the
        # sandbox's death before it dies itself (a machine lost at once reports nothing).
        tree = self.descendants()
        pids = tree + sorted(self.netns_pids() - set(tree))
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._reap()
        self.procs.clear()
        return len(pids)

    def stop_all(self, grace: float = 10.0) -> None:
        """SIGTERM every process group, then SIGKILL what is left after ``grace``."""
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        self.kill_all()


class Topology:
    def __init__(self) -> None:
        self.run_id = uuid.uuid4().hex[:5]
        self.subnet = f"10.{random.randint(100, 250)}.{random.randint(0, 255)}"
        self.switch = f"cf{self.run_id}-sw"
        self.hosts: dict[str, Host] = {}
        self._namespaces: list[str] = []
        self._veths: list[str] = []  # created in the root namespace first
        self._ns(self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")

    def _ns(self, name: str) -> None:
        _ip("netns", "add", name)
        self._namespaces.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def add_host(self, name: str) -> Host:
        index = len(self.hosts) + 1
        netns = f"cf{self.run_id}-{name}"
        self._ns(netns)
        here, there = f"cf{self.run_id}{index}h", f"cf{self.run_id}{index}s"
        self._veths.append(here)
        _ip("link", "add", here, "type", "veth", "peer", "name", there)
        _ip("link", "set", here, "netns", netns)
        _ip("link", "set", there, "netns", self.switch)
        _ip("-n", self.switch, "link", "set", there, "master", "br0")
        _ip("-n", self.switch, "link", "set", there, "up")
        address = f"{self.subnet}.{index}"
        _ip("-n", netns, "addr", "add", f"{address}/24", "dev", here)
        _ip("-n", netns, "link", "set", here, "up")
        host = Host(self, name, netns, address)
        self.hosts[name] = host
        return host

    def cut(self, host: Host) -> None:
        """Take ``host``'s link down (a partition)."""
        index = list(self.hosts).index(host.name) + 1
        _ip("-n", self.switch, "link", "set", f"cf{self.run_id}{index}s", "down")

    def mend(self, host: Host) -> None:
        """Bring ``host``'s link back up (the partition heals)."""
        index = list(self.hosts).index(host.name) + 1
        _ip("-n", self.switch, "link", "set", f"cf{self.run_id}{index}s", "up")

    def close(self) -> None:
        """Stop every host's processes (last added first), delete namespaces and veths."""
        for host in reversed(list(self.hosts.values())):
            host.stop_all()
        for name in reversed(self._namespaces):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
        for veth in self._veths:  # left in the root namespace only if set-up failed half way
            subprocess.run(["ip", "link", "del", veth], capture_output=True, timeout=30)
        self._namespaces.clear()
        self._veths.clear()
