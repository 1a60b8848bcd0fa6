"""Restarts, crashes and lost workers: nothing is lost, nothing hangs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from confide.client import TaskStatus
from confide.execution._staging import private_area

from ._helpers import echo_function, input_file, mounted_anywhere, output_file, start_endless_task
from ._server import Server


def test_everything_survives_a_restart(fresh_server: Server) -> None:
    s = fresh_server.start()
    admin = s.admin()
    uid, alice = s.new_user("DataOwner", "org")
    fid = echo_function(admin)
    iid, oid = input_file(alice), output_file(alice)
    created = alice.create_task(fid, {"message": "later"}, executor="builtin")
    done = alice.create_task(fid, {"message": "done"}, executor="builtin")
    alice.invoke_task(done)
    assert alice.wait(done, 30).return_value == b"done"
    token = alice._token
    audit_before = len(admin.query_audit_logs("task", 1000))
    s.stop()
    s.start()
    alice = s.client()
    alice.use_token(uid, token or "")  # the token survives the restart (Q11 fix)
    assert alice.get_input_file(iid)[0] == [uid]
    assert alice.get_output_file(oid)[0] == [uid]
    assert alice.get_task(done).return_value == b"done"
    assert alice.get_task(created).status == TaskStatus.CREATED
    alice.invoke_task(created)
    assert alice.wait(created, 30).return_value == b"later"
    admin = s.admin()
    assert admin.get_function(fid).name == "builtin-echo"
    assert len(admin.query_audit_logs("task", 1000)) > audit_before
    s.stop()
    verify = subprocess.run([sys.executable, "-m", "confide", "audit", "verify", "--data-dir",
                             str(s.data_dir)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "audit log verifies" in verify.stdout


def test_a_task_staged_before_a_crash_runs_after_it(fresh_server: Server) -> None:
    s = fresh_server
    s.workers = 0  # nobody runs it before the crash
    s.start()
    admin = s.admin()
    fid = echo_function(admin)
    tid = admin.create_task(fid, {"message": "survivor"}, executor="builtin")
    admin.invoke_task(tid)
    assert admin.get_task(tid).status == TaskStatus.STAGED
    s.kill()
    s.workers = 2
    s.start()
    admin = s.admin()
    task = admin.wait(tid, 30)
    assert (task.status, task.return_value) == (TaskStatus.FINISHED, b"survivor")


def test_a_worker_killed_mid_task_fails_the_task_with_a_reason(fresh_server: Server) -> None:
    s = fresh_server.start()
    admin = s.admin()
    tid = start_endless_task(admin)
    pids = s.worker_pids()
    areas = [private_area(pid) for pid in pids]
    # Each worker's area is a tmpfs in its own mount namespace (the server runs as
    # root): the running task's staging is seen only through the worker's root.
    inside = [Path(f"/proc/{pid}/root") / a.relative_to("/")
              for pid, a in zip(pids, areas, strict=True)]
    deadline = time.monotonic() + 10.0  # Running from the lease on; staging follows it
    while not any(a.is_dir() and os.listdir(a) for a in inside) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert any(a.is_dir() and os.listdir(a) for a in inside)  # the running task's staging
    assert all(os.listdir(a) == [] for a in areas)  # the host sees none of it
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    task = admin.wait(tid, 20)
    assert task.status == TaskStatus.FAILED
    assert task.reason.startswith("Runtime Error: Executor"), task.reason
    # The kernel freed the killed workers' tmpfs; the supervisor removed their directories.
    deadline = time.monotonic() + 5
    while any(a.exists() for a in areas) or mounted_anywhere(*areas):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not any(a.exists() for a in areas)
    assert mounted_anywhere(*areas) == []
    # Replacement workers take new work.
    echo = echo_function(admin)
    t2 = admin.create_task(echo, {"message": "again"}, executor="builtin")
    admin.invoke_task(t2)
    assert admin.wait(t2, 30).return_value == b"again"


def test_a_worker_that_stops_heart_beating_times_out(fresh_server: Server) -> None:
    s = fresh_server.start()  # executor timeout 3 s
    admin = s.admin()
    tid = start_endless_task(admin)
    for pid in s.worker_pids():
        os.kill(pid, signal.SIGSTOP)  # alive but silent: only the heartbeat timeout notices
    try:
        task = admin.wait(tid, 20)
    finally:
        for pid in s.worker_pids():
            os.kill(pid, signal.SIGCONT)
    assert (task.status, task.reason) == (TaskStatus.FAILED, "Runtime Error: Executor Timeout")


def test_default_admin_password_is_refused_outside_sim(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "confide", "serve", "--data-dir",
                        str(tmp_path / "d"), "--tee", "tdx"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2
    assert "default admin password" in r.stderr


def test_a_relative_data_dir_works_as_the_readme_shows(tmp_path: Path) -> None:
    """``confide serve --data-dir ./confide-data``: workers get absolute paths."""
    s = Server(tmp_path / "confide-data", relative=True).start()
    try:
        admin = s.admin()
        tid = admin.create_task(echo_function(admin), {"message": "relative"}, executor="builtin")
        admin.invoke_task(tid)
        assert admin.wait(tid, 30).return_value == b"relative"
    finally:
        s.stop()
