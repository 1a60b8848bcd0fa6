"""Seen from the host: every sandbox runs as a host uid of its own, without capabilities.

The hostile corpus checks what a function can do from inside; these tests check the
same boundary from outside (``/proc/<pid>/status`` of the function process), and
the uid layer on its own: a process running as one sandbox's uid, outside any
namespace and without seccomp, cannot touch another sandbox, the worker's staged
plaintext or the host's kernel knobs and device nodes.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from pysandbox_support import (
    MemoryTaskIO,
    bwrap_children,
    executor,
    function_pids,
    invocation,
    small_limits,
)

from confide.config import Limits
from confide.execution._staging import Stager, private_area
from confide.executors._sandbox._ids import DEFAULT_LOCK_DIR, IdLease, host_ids
from confide.staged import StagedFile

LIMITS = Limits()
FIRST, COUNT = LIMITS.python_sandbox_uid_base, LIMITS.python_sandbox_uid_count


def _status(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def _assert_unprivileged_and_own(pid: int) -> int:
    """The process's host uid/gid: one id of the range, all four of each the same,
    no supplementary groups, no capabilities; returns the id."""
    status = _status(pid)
    uids = {int(u) for u in status["Uid"].split()}
    gids = {int(g) for g in status["Gid"].split()}
    assert len(uids) == 1 and uids == gids, status
    (ident,) = uids
    assert FIRST <= ident < FIRST + COUNT
    assert ident not in (0, os.getuid(), os.geteuid())
    assert status["Groups"] == ""
    for caps in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
        assert int(status[caps], 16) == 0, (caps, status[caps])
    return ident


def _running_python(pid: int) -> bool:
    """Past bwrap's set-up: until it runs the interpreter, bwrap's child holds every
    capability *of the sandbox's own user namespace* (over nothing of the host's)."""
    try:
        return _status(pid)["Name"] != "bwrap"
    except FileNotFoundError:
        return False


def _lock_is_free(ident: int) -> bool:
    try:
        fd = os.open(os.path.join(DEFAULT_LOCK_DIR, str(ident)), os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return True  # a lease removes its file when it is given back
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_pre_started_sandboxes_each_run_as_a_host_uid_of_their_own() -> None:
    with executor(prestart=2) as ex:
        assert ex.wait_prestarted(20.0)
        bwraps = ex.prestarted_pids()
        functions = function_pids(bwraps)
        assert len(bwraps) == len(functions) == 2
        ids = [_assert_unprivileged_and_own(pid) for pid in functions]
        assert ids == [_assert_unprivileged_and_own(pid) for pid in bwraps]  # bwrap too
        assert ids[0] != ids[1]
        assert not any(_lock_is_free(i) for i in ids)  # held while they wait
    assert all(_lock_is_free(i) for i in ids)  # given back once they are reaped


def test_a_cold_sandbox_runs_as_a_host_uid_of_its_own_while_its_function_runs() -> None:
    seen: list[int] = []
    source = "import time\ndef entrypoint(argv):\n    time.sleep(1.5)\n    return 'done'\n"
    with executor() as ex:
        ex.sandbox_config()  # the start-up check's sandbox is not the one watched below
        result: list[str] = []
        runner = threading.Thread(target=lambda: result.append(ex.run(invocation(source))))
        runner.start()
        deadline = time.monotonic() + 5.0
        while not seen and time.monotonic() < deadline:
            seen += [pid for pid in function_pids(bwrap_children()) if _running_python(pid)]
            time.sleep(0.02)
        assert seen
        ident = _assert_unprivileged_and_own(seen[0])
        runner.join()
    assert result == ["done"]
    assert _lock_is_free(ident)


# --- the uid layer alone -----------------------------------------------------


@pytest.fixture
def other_uid() -> Iterator[IdLease]:
    """A sandbox uid of its own, held by the test (as another sandbox's would be)."""
    lease = host_ids(FIRST, COUNT).lease()
    yield lease
    lease.release()


def _as(lease: IdLease, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as ``lease``'s uid/gid: no namespaces, no seccomp, just the uid."""
    return subprocess.run(list(argv), user=lease.uid, group=lease.gid, extra_groups=[], env={},
                          capture_output=True, text=True, timeout=20, check=False)  # fmt: skip


def test_the_sandbox_uid_alone_cannot_write_sysctls_or_change_device_nodes(
    other_uid: IdLease,
) -> None:
    for knob in ("kernel/panic", "fs/lease-break-time", "kernel/core_pattern"):
        before = Path(f"/proc/sys/{knob}").read_text()
        done = _as(other_uid, "/bin/sh", "-c", f"echo 1 > /proc/sys/{knob}")
        assert done.returncode != 0 and "Permission denied" in done.stderr, done
        assert Path(f"/proc/sys/{knob}").read_text() == before
    mode = os.stat("/dev/null").st_mode
    done = _as(other_uid, "/bin/chmod", "777", "/dev/null")
    assert done.returncode != 0 and "not permitted" in done.stderr, done
    assert os.stat("/dev/null").st_mode == mode


def test_one_sandbox_uid_cannot_signal_or_read_another_sandbox(other_uid: IdLease) -> None:
    with executor(prestart=1) as ex:
        assert ex.wait_prestarted(15.0)
        (pid,) = function_pids(ex.prestarted_pids())
        assert _assert_unprivileged_and_own(pid) != other_uid.uid
        done = _as(other_uid, "/bin/sh", "-c", f"kill -0 {pid}")
        assert done.returncode != 0 and "not permitted" in done.stderr.lower(), done
        for leaf in ("mem", "environ", "maps", "fd/0"):
            done = _as(other_uid, "/bin/cat", f"/proc/{pid}/{leaf}")
            assert done.returncode != 0 and "Permission denied" in done.stderr, (leaf, done)
        assert pid in function_pids(ex.prestarted_pids())  # still there, untouched


def test_one_sandbox_uid_cannot_ptrace_another_sandbox(other_uid: IdLease) -> None:
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None or not os.access(python, os.X_OK):
        pytest.skip("needs a system python3 that every uid can run")
    attach = ("import ctypes, sys\nlibc = ctypes.CDLL(None, use_errno=True)\n"
              "print(libc.ptrace(16, int(sys.argv[1]), 0, 0), ctypes.get_errno())\n")  # fmt: skip
    with executor(prestart=1) as ex:
        assert ex.wait_prestarted(15.0)
        (pid,) = function_pids(ex.prestarted_pids())
        done = _as(other_uid, python, "-I", "-c", attach, str(pid))
        assert done.stdout.split() == ["-1", "1"], done  # EPERM


SNOOPER = """
import os, time
def entrypoint(argv):
    data = teaclave_open("in", "rb").read()
    time.sleep(2.0)
    return data.decode()
"""


def test_a_second_sandbox_cannot_read_the_first_ones_staged_input(other_uid: IdLease) -> None:
    """The first sandbox holds its plaintext input (a sealed memfd) while it runs."""
    result: list[str] = []
    with executor() as ex:
        ex.sandbox_config()
        task_io = MemoryTaskIO({"in": b"CANARY-plaintext"})
        runner = threading.Thread(
            target=lambda: result.append(ex.run(invocation(SNOOPER, task_io=task_io))))
        runner.start()
        pids: list[int] = []
        deadline = time.monotonic() + 5.0
        while not pids and time.monotonic() < deadline:
            pids = [pid for pid in function_pids(bwrap_children()) if _running_python(pid)]
            time.sleep(0.02)
        assert pids
        fds = os.listdir(f"/proc/{pids[0]}/fd")
        assert any("memfd:input" in os.readlink(f"/proc/{pids[0]}/fd/{fd}") for fd in fds)
        for fd in fds:
            done = _as(other_uid, "/bin/cat", f"/proc/{pids[0]}/fd/{fd}")
            assert "CANARY" not in done.stdout and done.returncode != 0, (fd, done)
        runner.join()
    assert result == ["CANARY-plaintext"]


class _OneFile:
    def download(self, url: str, dst: Any, *, max_bytes: int) -> int:
        dst.write(b"CANARY-staged-plaintext")
        return 23

    def upload(self, url: str, src: BinaryIO, size: int) -> None:
        raise AssertionError("no upload expected")


def test_the_sandbox_uid_cannot_read_the_workers_private_staging_area(
    other_uid: IdLease,
) -> None:
    stager = Stager(_OneFile(), small_limits())
    inputs = [StagedFile(name="in", url="https://example.com/in", cmac=b"", schema="raw",
                         key=b"", iv=b"")]
    with stager.stage("task-1", inputs, []) as staged:
        with staged.open_input("in") as f:
            assert f.read() == b"CANARY-staged-plaintext"
        area = private_area(os.getpid())
        files = [p for p in area.rglob("*") if p.is_file()]
        assert files
        for path in [area, *area.iterdir(), *files]:
            done = _as(other_uid, "/bin/cat", str(path))
            assert done.returncode != 0 and "Permission denied" in done.stderr, (path, done)
            assert "CANARY" not in done.stdout
