"""The worker's private area on a tmpfs of its own, checked from the host's side.

Each case runs ``mount_private_area`` in a fresh process (as the worker does,
first thing) and looks at it from this one: the kind of area, its mount, what
the host sees of the plaintext, and what is left once the process is gone.
Run as root, the way CI runs; the unprivileged case drops to nobody.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from confide.execution._private_tmpfs import AreaKind, area_tmpfs_bytes
from confide.execution._staging import private_area, remove_private_area
from confide.execution._worker import WorkerConfig
from tests.platform._helpers import mounted_anywhere

MiB = 1 << 20

# Mounts the area, writes a file of `write` bytes into it, prints what it saw (one
# JSON line), then holds the area until its stdin closes.
_CHILD = textwrap.dedent("""
    import errno, json, os, sys, threading
    from confide.execution._private_tmpfs import mount_private_area, release_private_area
    from confide.execution._staging import private_area, remove_private_area
    size, write, setup = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    if setup == "thread":
        threading.Thread(target=sys.stdin.readline, daemon=True).start()
    elif setup == "nobody":
        os.setgid(65534); os.setuid(65534)
    kind = mount_private_area(size)
    area = private_area(os.getpid())
    written = "ok"
    try:
        with open(area / "plain-0", "wb") as f:
            f.write(b"s" * write)
    except OSError as e:
        written = errno.errorcode[e.errno]
    mounts = [line for line in open("/proc/self/mountinfo") if f" {area} " in line]
    print(json.dumps({"kind": str(kind), "written": written, "mounts": mounts,
                      "ns": os.readlink("/proc/self/ns/mnt")}), flush=True)
    sys.stdin.read()
    if sys.argv[4:] == ["release"]:
        release_private_area(kind)
""")


@contextmanager
def _child(size: int, write: int, setup: str = "") -> Iterator[tuple[int, dict[str, object]]]:
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(size), str(write), setup],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    try:
        seen = json.loads(proc.stdout.readline())
        yield proc.pid, seen
    finally:
        proc.stdin.close()
        assert proc.wait(10) == 0
        # What the supervisor does when a worker is gone.
        remove_private_area(proc.pid)


def test_a_root_worker_stages_on_a_huge_page_tmpfs_the_host_cannot_see() -> None:
    size = area_tmpfs_bytes(2, 64 * MiB)
    with _child(size, 8 * MiB) as (pid, seen):
        area = private_area(pid)
        assert (seen["kind"], seen["written"]) == (AreaKind.HUGE_TMPFS, "ok")
        (mount,) = seen["mounts"]
        assert isinstance(mount, str)
        fs_options = mount.split(" - ")[1]
        assert fs_options.startswith("tmpfs tmpfs rw,")
        assert f"size={size // 1024}k" in fs_options and "mode=700" in fs_options
        assert "huge=within_size" in fs_options
        assert {"nosuid", "nodev"} <= set(mount.split(" - ")[0].split()[5].split(","))
        assert seen["ns"] != os.readlink("/proc/self/ns/mnt")  # a namespace of its own
        # The host: an empty 0700 directory, no mount, no plaintext.
        assert os.listdir(area) == []
        assert area.stat().st_mode & 0o777 == 0o700
        assert str(area) not in Path("/proc/self/mountinfo").read_text()
        # Only from inside the worker's namespace is the file there.
        inside = Path(f"/proc/{pid}/root") / area.relative_to("/") / "plain-0"
        assert inside.read_bytes() == b"s" * (8 * MiB)
    # The worker is gone: no process holds the tmpfs any more, so the kernel freed it.
    assert mounted_anywhere(area) == []
    assert not area.exists()


def test_the_tmpfs_size_is_a_hard_fence() -> None:
    with _child(2 * MiB, 3 * MiB) as (_, seen):
        assert (seen["kind"], seen["written"]) == (AreaKind.HUGE_TMPFS, "ENOSPC")


def test_a_process_with_a_second_thread_keeps_the_plain_directory() -> None:
    with _child(64 * MiB, MiB, "thread") as (pid, seen):
        assert (seen["kind"], seen["written"], seen["mounts"]) == (AreaKind.DIRECTORY, "ok", [])
        assert seen["ns"] == os.readlink("/proc/self/ns/mnt")  # unshare was not even tried
        assert (private_area(pid) / "plain-0").stat().st_size == MiB


def test_without_cap_sys_admin_the_area_stays_a_0700_directory_on_dev_shm() -> None:
    with _child(64 * MiB, MiB, "nobody") as (pid, seen):
        assert (seen["kind"], seen["written"], seen["mounts"]) == (AreaKind.DIRECTORY, "ok", [])
        assert seen["ns"] == os.readlink("/proc/self/ns/mnt")
        area = private_area(pid)
        assert (area.stat().st_uid, area.stat().st_mode & 0o777) == (65534, 0o700)


def test_the_size_is_every_slots_cap_plus_page_rounding() -> None:
    assert area_tmpfs_bytes(4, 2 << 30) == 4 * ((2 << 30) + 16 * MiB)
    assert area_tmpfs_bytes(0, 64 * MiB) == area_tmpfs_bytes(1, 64 * MiB)


def test_a_killed_process_leaves_nothing_mounted() -> None:
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(64 * MiB), str(MiB), ""],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    area = private_area(proc.pid)
    try:
        assert json.loads(proc.stdout.readline())["kind"] == AreaKind.HUGE_TMPFS
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 5
        while mounted_anywhere(area) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mounted_anywhere(area) == []
        assert os.listdir(area) == []  # the host's directory never held the plaintext
    finally:
        remove_private_area(proc.pid)


@pytest.mark.parametrize("setup", ["", "nobody"])
def test_an_orderly_exit_releases_the_area_and_leaves_nothing_on_the_host(setup: str) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(64 * MiB), str(MiB), setup,
                             "release"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    area = private_area(proc.pid)
    try:
        kind = json.loads(proc.stdout.readline())["kind"]
        assert kind == (AreaKind.DIRECTORY if setup else AreaKind.HUGE_TMPFS)
        assert area.is_dir()
        proc.stdin.close()
        assert proc.wait(10) == 0
        assert not area.exists()  # no supervisor needed
        assert mounted_anywhere(area) == []
    finally:
        remove_private_area(proc.pid)


def test_a_worker_stopped_while_it_enrols_releases_its_area(tmp_path: Path) -> None:
    # SIGTERM (the supervisor's, or PDEATHSIG when the server dies) before the worker
    # serves: it leaves through its cleanup, not by the signal's default action.
    cfg = WorkerConfig(scheduler="127.0.0.1:1", key_service="127.0.0.1:1",  # nothing answers
                       executor_id="executor-starting", ca_pem=b"ca",
                       sim_state_dir=str(tmp_path / "sim"))  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "confide.execution._worker"],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdin is not None and proc.stderr is not None
    proc.stdin.write(cfg.to_cbor())
    proc.stdin.close()
    area = private_area(proc.pid)
    try:
        deadline = time.monotonic() + 20
        while not mounted_anywhere(area) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mounted_anywhere(area) == [str(proc.pid)]  # mounted, and enrolling
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 128 + signal.SIGTERM, proc.stderr.read().decode()
        assert not area.exists()
        assert mounted_anywhere(area) == []
    finally:
        proc.kill()
        proc.wait()
        remove_private_area(proc.pid)


_PARENT = textwrap.dedent("""
    import subprocess, sys
    worker = subprocess.Popen([sys.executable, "-m", "confide.execution._worker"],
                              stdin=subprocess.PIPE)
    worker.stdin.write(sys.stdin.buffer.read(int(sys.argv[1])))
    worker.stdin.close()
    print(worker.pid, flush=True)
    sys.stdin.read()
""")


def test_a_worker_orphaned_while_it_enrols_releases_its_area(tmp_path: Path) -> None:
    # kill -9 of its parent: PDEATHSIG (SIGTERM) and the orphan watch both make it leave,
    # on two threads at once; the area is released whole, once.
    cfg = WorkerConfig(scheduler="127.0.0.1:1", key_service="127.0.0.1:1",
                       executor_id="executor-orphan", ca_pem=b"ca",
                       sim_state_dir=str(tmp_path / "sim")).to_cbor()  # fmt: skip
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(len(cfg))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    assert parent.stdin is not None and parent.stdout is not None
    parent.stdin.write(cfg)
    parent.stdin.flush()
    pid = int(parent.stdout.readline())
    area = private_area(pid)
    try:
        deadline = time.monotonic() + 20
        while not mounted_anywhere(area) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mounted_anywhere(area) == [str(pid)]
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 20
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # reaped by init (or this process's subreaper)
        assert not area.exists()
        assert mounted_anywhere(area) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        remove_private_area(pid)


def test_only_the_large_page_tmpfs_stages_without_the_writer_thread() -> None:
    assert {k: k.write_behind for k in AreaKind} == {
        AreaKind.HUGE_TMPFS: False, AreaKind.TMPFS: True, AreaKind.DIRECTORY: True}
