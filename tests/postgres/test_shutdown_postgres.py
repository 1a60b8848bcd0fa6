"""The SIGTERM drain with PostgreSQL as the database (docs/operations.md, "Stopping and
restarting"): the leases, the queue and the results live there."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from confide.client import TaskStatus

from ..platform._drain import PY_SLEEP, exit_code, health_channel, wait_not_serving
from ..platform._helpers import echo_function, start_endless_task, wait_for_status
from ..platform._server import Server


def test_the_drain_on_postgres_keeps_results_queues_and_fails_the_overdue(
        pg_url: str, tmp_path: Path) -> None:
    s = Server(tmp_path / "data", workers=2, database_url=pg_url,
               extra_args=["--worker-slots", "1", "--shutdown-grace", "8"]).start()
    try:
        admin = s.admin()
        endless = start_endless_task(admin)
        slow = admin.register_function("sleep", executor_type="python",
                                       payload=PY_SLEEP.encode())
        sleeper = admin.create_task(slow, {}, executor="mesapy")
        admin.invoke_task(sleeper)
        wait_for_status(admin, sleeper, TaskStatus.RUNNING, timeout=30)
        queued = admin.create_task(echo_function(admin), {"message": "after"},
                                   executor="builtin")
        admin.invoke_task(queued)  # both slots are busy: it waits in the queue
        assert admin.get_task(queued).status == TaskStatus.STAGED
        assert s.proc is not None
        with health_channel(s) as health:
            s.proc.send_signal(signal.SIGTERM)
            started = time.monotonic()
            wait_not_serving(health)
        assert exit_code(s, 40) == 0
        assert time.monotonic() - started >= 7  # the endless task held it to the grace
        s.start()
        admin = s.admin()
        done = admin.get_task(sleeper)
        assert (done.status, done.return_value) == (TaskStatus.FINISHED, b"slept")
        failed = admin.get_task(endless)
        assert (failed.status, failed.reason) == (
            TaskStatus.FAILED,
            "Runtime Error: Server Shutdown (still running after the 8 s shutdown grace period)")
        later = admin.wait(queued, 30)
        assert (later.status, later.return_value) == (TaskStatus.FINISHED, b"after")
    finally:
        s.stop()
