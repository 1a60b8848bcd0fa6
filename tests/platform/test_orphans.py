"""kill -9 of ``confide serve`` alone (issue 12: its workers ran on as orphans, joined
the next server and held 6 tasks Running for minutes): the workers exit by
themselves, and the task they held ends within the lease timeout."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from confide.client import TaskStatus
from confide.execution._staging import private_area

from ._helpers import echo_function, start_endless_task
from ._server import Server


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_kill_9_of_the_server_ends_its_workers_and_their_tasks(fresh_server: Server) -> None:
    s = fresh_server.start()  # executor (lease) timeout 3 s
    admin = s.admin()
    tid = start_endless_task(admin)
    workers = s.worker_pids()
    assert len(workers) == 2
    s.stop(signal.SIGKILL)  # the server only: its workers are not signalled
    killed = time.monotonic()
    deadline = killed + 5
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers), "orphaned workers kept running"
    # With no supervisor left, each worker released its private area on its way out.
    assert not any(private_area(pid).exists() for pid in workers)
    restarting = time.monotonic()
    s.start()
    restart_s = time.monotonic() - restarting  # grows with the machine's load, not the lease
    admin = s.admin()
    task = admin.wait(tid, 20)
    ended = time.monotonic() - killed - restart_s
    assert (task.status, task.reason) == (TaskStatus.FAILED, "Runtime Error: Executor Timeout")
    # The lease timeout after the last renewal, plus a reaper round and some slack.
    assert ended < 3.0 + 1.0 + 4.0, (ended, restart_s)
    fid = echo_function(admin)
    t2 = admin.create_task(fid, {"message": "after"}, executor="builtin")
    admin.invoke_task(t2)
    assert admin.wait(t2, 30).return_value == b"after"
    assert not any(_alive(pid) for pid in workers)
    for pid in s.worker_pids():
        assert os.path.exists(f"/proc/{pid}")
