"""Pre-started sandboxes: hardened and waiting before the task, still one task each."""

from __future__ import annotations

import os
import select
import signal
import threading
import time

import pytest
from pysandbox_support import (
    MemoryTaskIO,
    executor,
    function_pids,
    invocation,
    process_exists,
    small_limits,
)

from confide.config import Limits
from confide.executors._sandbox import SandboxFailure, discover
from confide.executors._sandbox._launch import Prestarted, job_fd_capacity
from confide.executors.python import PythonExecutor
from confide.invocation import CancelledError

READY_S = 15.0  # generous: the suite runs on two busy cores

PRELOADED = "import sys\ndef entrypoint(argv):\n    return str('numpy' in sys.modules)\n"
# Leaves a mark in the interpreter, in /tmp and in the process; reports the previous one.
MARKER = """
import builtins, os
def entrypoint(argv):
    seen = [getattr(builtins, "confide_mark", None), os.path.exists("/tmp/mark")]
    builtins.confide_mark = argv[1]
    open("/tmp/mark", "w").close()
    return repr(seen)
"""
SLEEP = "import time\ndef entrypoint(argv):\n    time.sleep(float(argv[1]))\n    return 'woke'\n"


def _wait_gone(pids: list[int], timeout: float = 5.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if process_exists(pid)]
        if not alive:
            return []
        time.sleep(0.02)
    return alive


@pytest.fixture
def pooled() -> PythonExecutor:
    ex = executor(prestart=1)
    assert ex.wait_prestarted(READY_S)
    yield ex
    ex.close()


def test_job_runs_in_a_pre_started_sandbox_with_numpy_already_imported(
    pooled: PythonExecutor,
) -> None:
    (waiting,) = pooled.prestarted_pids()
    assert pooled.run(invocation(PRELOADED)) == "True"
    assert waiting not in pooled.prestarted_pids()
    assert _wait_gone([waiting]) == []  # it ran the job and exited


def test_prestart_zero_runs_cold_as_before() -> None:
    ex = executor()
    assert not ex.wait_prestarted(0.1)
    assert ex.prestarted_pids() == []
    assert ex.run(invocation(PRELOADED)) == "False"
    ex.close()


def test_one_sandbox_never_runs_two_jobs(pooled: PythonExecutor) -> None:
    used: set[int] = set()
    for i in range(3):
        assert pooled.wait_prestarted(READY_S)
        used.update(pooled.prestarted_pids())
        assert pooled.run(invocation(MARKER, {"m": str(i)})) == "[None, False]"
    assert len(used) == 3
    for i in range(3):  # back to back: pre-started or cold, always a fresh process
        assert pooled.run(invocation(MARKER, {"m": str(i)})) == "[None, False]"


def test_a_pre_started_sandbox_accepts_one_job_only() -> None:
    box = Prestarted.start(discover(), small_limits())
    try:
        r, w = os.pipe()
        os.close(r)
        box.hand_over([w, w, w])  # the harness rejects it; what matters is the worker side
        with pytest.raises(RuntimeError, match="one job only"):
            box.hand_over([w, w, w])
        os.close(w)
        assert not box.alive()
    finally:
        box.kill()


def test_idle_sandbox_that_dies_is_replaced_and_never_handed_a_job(
    pooled: PythonExecutor,
) -> None:
    (waiting,) = pooled.prestarted_pids()
    (function,) = function_pids([waiting])
    os.kill(function, signal.SIGKILL)
    assert _wait_gone([waiting, function]) == []  # discarded and reaped
    assert pooled.wait_prestarted(READY_S)
    assert waiting not in pooled.prestarted_pids()
    assert pooled.run(invocation(PRELOADED)) == "True"


def test_sandbox_killed_just_before_its_job_is_skipped(pooled: PythonExecutor) -> None:
    (function,) = function_pids(pooled.prestarted_pids())
    os.kill(function, signal.SIGKILL)
    # Whether the pool noticed yet or not, the job runs (cold) and succeeds.
    assert pooled.run(invocation("def entrypoint(argv):\n    return 'ran'\n")) == "ran"


def test_dead_sandbox_is_not_alive_and_refuses_the_job() -> None:
    box = Prestarted.start(discover(), small_limits())
    try:
        assert select.select([box.fileno()], [], [], READY_S)[0]
        assert box.read_idle() is True
        assert box.alive()
        (function,) = function_pids([box.pid])
        os.kill(function, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while box.alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not box.alive()
    finally:
        box.kill()
    assert not process_exists(box.pid)


def test_cancel_kills_a_pre_started_sandbox(pooled: PythonExecutor) -> None:
    (waiting,) = pooled.prestarted_pids()
    function = function_pids([waiting])
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(CancelledError):
        pooled.run(invocation(SLEEP, {"s": "30"}, cancel=cancel))
    assert time.monotonic() - started < 3
    assert _wait_gone([waiting, *function]) == []


def test_wall_clock_starts_when_the_job_is_handed_over() -> None:
    ex = executor(prestart=1, python_wall_seconds=1.0)
    try:
        assert ex.wait_prestarted(READY_S)
        time.sleep(1.2)  # the sandbox has waited longer than the whole limit
        assert ex.run(invocation(SLEEP, {"s": "0.3"})) == "woke"
        assert ex.wait_prestarted(READY_S)
        with pytest.raises(SandboxFailure) as info:
            ex.run(invocation(SLEEP, {"s": "30"}))
        assert info.value.cause == "time"
        assert info.value.reason == "Runtime Error: time limit exceeded (1 s)"
    finally:
        ex.close()


def test_cpu_limit_still_ends_a_pre_started_sandbox() -> None:
    ex = executor(prestart=1, python_cpu_seconds=1, python_wall_seconds=20.0)
    try:
        assert ex.wait_prestarted(READY_S)
        with pytest.raises(SandboxFailure) as info:
            ex.run(invocation("def entrypoint(argv):\n    while True:\n        pass\n"))
        assert info.value.cause == "cpu"
        assert info.value.reason == "Runtime Error: CPU time limit exceeded (1 s)"
    finally:
        ex.close()


def test_inputs_outputs_and_log_go_through_a_pre_started_sandbox(
    pooled: PythonExecutor,
) -> None:
    source = """
def entrypoint(argv):
    data = teaclave_open("in", "rb").read()
    with teaclave_open("out", "wb") as f:
        f.write(data.upper())
    print("copied", len(data))
    teaclave_open("bad", "rb")
"""
    io = MemoryTaskIO({"in": b"secret"}, ["out"], corrupted=["bad"])
    logs: list[str] = []
    assert pooled.run(invocation(source, {"save_log": "true"}, io, logs=logs)) == (
        "MESAPY_EXEC_ERROR"
    )
    assert io.written == {"out": b"SECRET"}
    assert logs[:2] == ["[INFO function] copied 6",
                        "[WARN function] Traceback (most recent call last):"]


def test_job_with_more_fds_than_a_waiting_sandbox_may_hold_runs_cold() -> None:
    limits = {"python_max_open_files": 16}
    capacity = job_fd_capacity(small_limits(**limits))  # manifest, payload, out + inputs
    ex = executor(prestart=1, **limits)
    source = (
        "import sys\ndef entrypoint(argv):\n"
        "    data = b''.join(teaclave_open(n).read() for n in sorted(argv[1].split()))\n"
        "    return f\"{'numpy' in sys.modules} {data.decode()}\"\n"
    )
    try:
        for count, preloaded in ((capacity - 3, "True"), (capacity - 2, "False")):
            assert ex.wait_prestarted(READY_S)
            names = [f"i{n:02}" for n in range(count)]
            io = MemoryTaskIO({n: n.encode() for n in names})
            result = ex.run(invocation(source, {"n": " ".join(names)}, io))
            assert result == f"{preloaded} {''.join(names)}"
    finally:
        ex.close()


def test_close_kills_every_idle_sandbox_and_leaks_nothing() -> None:
    fds_before = len(os.listdir("/proc/self/fd"))
    threads_before = threading.active_count()
    ex = executor(prestart=2)
    assert ex.wait_prestarted(READY_S)
    bwraps = ex.prestarted_pids()
    functions = function_pids(bwraps)
    assert len(bwraps) == len(functions) == 2
    ex.close()
    assert [pid for pid in bwraps + functions if process_exists(pid)] == []  # not even zombies
    assert ex.prestarted_pids() == []
    assert len(os.listdir("/proc/self/fd")) == fds_before
    assert threading.active_count() == threads_before
    assert ex.run(invocation(PRELOADED)) == "False"  # closed: cold from now on


def test_close_lets_a_running_job_finish() -> None:
    with executor(prestart=1) as ex:
        assert ex.wait_prestarted(READY_S)
        result: list[str] = []
        job = invocation(SLEEP, {"s": "0.5"})
        runner = threading.Thread(target=lambda: result.append(ex.run(job)))
        runner.start()
        time.sleep(0.1)
        ex.close()
        runner.join(10)
    assert result == ["woke"]


def test_prestart_is_capped_by_the_limit() -> None:
    cap = Limits().python_max_prestarted
    PythonExecutor(prestart=cap)  # allowed (nothing starts before the first run)
    with pytest.raises(ValueError, match="python_max_prestarted"):
        PythonExecutor(prestart=cap + 1)
    with pytest.raises(ValueError):
        PythonExecutor(prestart=-1)
    with pytest.raises(ValueError):
        PythonExecutor(limits=Limits(python_max_prestarted=0), prestart=1)


def test_pool_keeps_at_most_prestart_sandboxes_idle() -> None:
    with executor(prestart=2) as ex:
        assert ex.wait_prestarted(READY_S)
        for _ in range(3):
            ex.run(invocation(PRELOADED))
            assert len(ex.prestarted_pids()) <= 2
        assert ex.wait_prestarted(READY_S)
        assert len(ex.prestarted_pids()) == 2


def test_missing_bwrap_leaves_the_pool_empty_and_runs_unavailable() -> None:
    from dataclasses import replace

    from confide.executors._sandbox import SandboxUnavailable

    config = replace(discover(), bwrap="/nonexistent/bwrap")
    with PythonExecutor(config=config, limits=small_limits(), prestart=1) as ex:
        with pytest.raises(SandboxUnavailable, match="/nonexistent/bwrap"):
            ex.wait_prestarted(0.3)  # the start-up check fails before any pool exists
        assert ex.prestarted_pids() == []
        with pytest.raises(SandboxUnavailable):
            ex.run(invocation("def entrypoint(argv):\n    return 'x'\n"))
