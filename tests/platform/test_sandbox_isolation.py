"""Issue 10's acceptance, end to end: ``confide serve`` started as the README says (as root
here, as in CI and a default container), a Python function looks at what it is and tries
the writes that worked when the sandbox mapped to host root."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

from confide.client import FunctionArgument, TaskStatus
from confide.config import Limits
from confide.executors._sandbox._ids import host_ids

from ._helpers import wait_for_status
from ._server import Server

PROBE = b'''
import errno, json, os, time

def _try(action):
    try:
        action()
    except OSError as e:
        return errno.errorcode[e.errno]
    return "DONE"

def _write(path, text):
    with open(path, "w") as f:
        f.write(text)

def entrypoint(argv):
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    report = {
        "uid_map": open("/proc/self/uid_map").read().split(),
        "CapEff": status["CapEff"].strip(),
        "CapPrm": status["CapPrm"].strip(),
    }
    for knob in ("kernel/panic", "fs/lease-break-time", "kernel/core_pattern"):
        report[knob] = _try(lambda: _write("/proc/sys/" + knob, "|/tmp/x\\n"))
    report["sysrq-trigger"] = _try(lambda: _write("/proc/sysrq-trigger", "h"))
    report["chmod /dev/null"] = _try(lambda: os.chmod("/dev/null", 0o777))
    report["/dev/shm"] = _try(lambda: _write("/dev/shm/fill", "x" * 65536))
    time.sleep(float(argv[1]))  # time for the host side to look at this process
    return json.dumps(report)
'''

KNOBS = ("/proc/sys/kernel/panic", "/proc/sys/fs/lease-break-time",
         "/proc/sys/kernel/core_pattern")  # fmt: skip


def _host_state() -> dict[str, object]:
    state: dict[str, object] = {k: Path(k).read_text() for k in KNOBS}
    state["/dev/null"] = os.stat("/dev/null")[:5]
    return state


def _status(pid: int) -> dict[str, str]:
    text = Path(f"/proc/{pid}/status").read_text()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def _sandbox_processes(workers: list[int]) -> dict[int, dict[str, str]]:
    """Every bwrap below the workers and its child (the function process), by pid."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found: dict[int, dict[str, str]] = {}
    for worker in workers:
        for pid in children.get(worker, []):
            try:
                if _status(pid)["Name"] != "bwrap":
                    continue
                found[pid] = _status(pid)
                for child in children.get(pid, []):
                    found[child] = _status(child)
            except FileNotFoundError:
                continue  # ended meanwhile
    return found


def test_a_python_function_under_a_root_server_gets_no_host_privilege(server: Server) -> None:
    workers = server.worker_pids()
    worker_uids = {int(_status(pid)["Uid"].split()[0]) for pid in workers}
    before = _host_state()
    admin = server.admin()
    fid = admin.register_function("isolation-probe", executor_type="python", payload=PROBE,
                                  arguments=[FunctionArgument("sleep")])
    tid = admin.create_task(fid, {"sleep": "2.0"}, executor="mesapy")
    admin.invoke_task(tid)
    wait_for_status(admin, tid, TaskStatus.RUNNING)
    seen: dict[int, dict[str, str]] = {}
    done = threading.Event()
    threading.Timer(2.5, done.set).start()
    while not done.is_set():  # the task's sandbox and the pre-started ones around it
        seen.update(_sandbox_processes(workers))
        time.sleep(0.05)
    task = admin.wait(tid, 30)
    assert task.status == TaskStatus.FINISHED and task.ok, task.reason
    report = json.loads(task.return_value)
    assert report["CapEff"] == report["CapPrm"] == "0000000000000000"
    assert report["uid_map"] == ["65534", "65534", "1"]  # 65534 inside, on a host uid below
    for attempt in ("kernel/panic", "fs/lease-break-time", "kernel/core_pattern",
                    "sysrq-trigger", "chmod /dev/null", "/dev/shm"):  # fmt: skip
        assert report[attempt] in ("EROFS", "EPERM", "EACCES", "ENOENT"), (attempt, report)
    limits = Limits()
    first, count = limits.python_sandbox_uid_base, limits.python_sandbox_uid_count
    bwraps = {pid for pid, s in seen.items() if int(s["PPid"]) in workers}
    functions = {pid for pid, s in seen.items() if s["Name"] != "bwrap"}
    assert functions, "no sandbox seen while the task ran"
    for pid, status in seen.items():  # seen from the host: each one's own unprivileged uid
        uids, gids = set(status["Uid"].split()), set(status["Gid"].split())
        assert len(uids) == 1 and uids == gids, status
        uid = int(uids.pop())
        assert first <= uid < first + count and uid != 0 and uid not in worker_uids
        assert status["Groups"] == ""
        if pid in functions or pid in bwraps:  # not bwrap's child during its set-up, which
            assert int(status["CapEff"], 16) == 0, status  # holds its own namespace's caps
    assert _host_state() == before


def test_a_sandbox_uid_cannot_read_the_servers_data_directory(server: Server) -> None:
    """Root secret, database, blobs: closed to every sandbox uid even outside the sandbox."""
    limits = Limits()
    lease = host_ids(limits.python_sandbox_uid_base, limits.python_sandbox_uid_count).lease()
    try:
        for target in (server.data_dir, *server.data_dir.iterdir()):
            done = subprocess.run(["/bin/ls", "-la", str(target)], user=lease.uid,
                                  group=lease.gid, extra_groups=[], env={}, capture_output=True,
                                  text=True, timeout=20, check=False)  # fmt: skip
            assert done.returncode != 0 and "Permission denied" in done.stderr, (target, done)
    finally:
        lease.release()
