"""50 concurrent clients creating and running tasks lose nothing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from confide.client import TaskStatus

from ._helpers import echo_function
from ._server import Server

CLIENTS = 50
TASKS_EACH = 4


@pytest.mark.slow
def test_fifty_concurrent_clients_lose_nothing(server: Server) -> None:
    fid = echo_function(server.admin())
    users = [server.new_user("DataOwner", "load") for _ in range(CLIENTS)]

    def work(i: int) -> list[tuple[str, str]]:
        _, client = users[i]
        done = []
        for j in range(TASKS_EACH):
            message = f"client {i} task {j}"
            tid = client.create_task(fid, {"message": message}, executor="builtin")
            client.invoke_task(tid)
            done.append((tid, message))
        return done

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = [r for batch in pool.map(work, range(CLIENTS)) for r in batch]
    assert len({tid for tid, _ in results}) == CLIENTS * TASKS_EACH
    for i, (tid, message) in enumerate(results):
        task = users[i // TASKS_EACH][1].wait(tid, 60)
        assert (task.status, task.return_value) == (TaskStatus.FINISHED, message.encode())
    for _uid, client in users:
        assert len(client.list_tasks()) == TASKS_EACH
