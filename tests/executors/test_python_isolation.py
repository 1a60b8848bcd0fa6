"""Concurrent runs stay apart, and the worker leaks nothing across runs."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from pysandbox_support import MemoryTaskIO, executor, invocation

from confide.executors._sandbox import SandboxFailure

EX = executor()

# Reads every input memfd the process holds, whatever its name in the task.
SNOOP = """
import os
def entrypoint(argv):
    seen = []
    for fd in range(3, 1024):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("/memfd:input"):
            seen.append(os.pread(fd, 100, 0).decode())
    return ",".join(sorted(seen))
"""


def test_concurrent_sandboxes_see_only_their_own_inputs() -> None:
    def one(i: int) -> str:
        io = MemoryTaskIO({"a": f"task{i}-a".encode(), "b": f"task{i}-b".encode()})
        return EX.run(invocation(SNOOP, task_io=io))

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(one, range(8)))
    assert results == [f"task{i}-a,task{i}-b" for i in range(8)]


def test_runs_leak_no_worker_file_descriptors() -> None:
    EX.run(invocation("def entrypoint(argv):\n    return 'warm'\n"))
    before = len(os.listdir("/proc/self/fd"))
    io = MemoryTaskIO({"in": b"x"}, ["out"], corrupted=["bad"])
    assert EX.run(invocation("def entrypoint(argv):\n    return 'ok'\n", task_io=io)) == "ok"
    assert EX.run(invocation("def entrypoint(argv):\n    raise ValueError\n")) != "ok"
    with pytest.raises(SandboxFailure):
        EX.run(invocation("import os\ndef entrypoint(argv):\n    os._exit(3)\n", task_io=io))
    assert len(os.listdir("/proc/self/fd")) == before
