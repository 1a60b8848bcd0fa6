"""Host ids for sandboxes: a range no one else owns, one id per live sandbox, root required."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from confide.config import Limits
from confide.executors._sandbox import SandboxFailure, SandboxUnavailable
from confide.executors._sandbox._ids import (
    HostIds,
    IdRange,
    check_range,
    host_ids,
    missing_capabilities,
)

PASSWD = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"
FULL_MAP = "         0          0 4294967295\n"
CLEAN = {"worker_ids": (0, 0), "passwd": PASSWD, "group": GROUP, "subuid": "", "subgid": "",
         "uid_map": FULL_MAP, "gid_map": FULL_MAP}  # fmt: skip


def _check(rng: IdRange, **changes: object) -> None:
    check_range(rng, **{**CLEAN, **changes})  # type: ignore[arg-type]


def test_the_default_range_holds_no_account_of_this_host() -> None:
    limits = Limits()
    host_ids(limits.python_sandbox_uid_base, limits.python_sandbox_uid_count)  # raises if not


def test_accepts_a_range_clear_of_accounts_and_subordinate_ids() -> None:
    _check(IdRange(0x70000000, 65536), subuid="alice:100000:65536\n")


def test_rejects_a_range_holding_root() -> None:
    with pytest.raises(SandboxUnavailable, match="within 1"):
        _check(IdRange(0, 10))


def test_rejects_a_range_holding_the_workers_own_uid() -> None:
    with pytest.raises(SandboxUnavailable, match="worker's own uid 2000"):
        _check(IdRange(1000, 5000), worker_ids=(2000, 0))


def test_rejects_a_range_holding_an_account() -> None:
    with pytest.raises(SandboxUnavailable, match=r"65534 \(nobody in /etc/passwd\)"):
        _check(IdRange(60000, 10000))


def test_rejects_a_range_holding_a_group() -> None:
    with pytest.raises(SandboxUnavailable, match=r"77777 \(staff2 in /etc/group\)"):
        _check(IdRange(70000, 10000), group=GROUP + "staff2:x:77777:\n")


def test_rejects_a_range_overlapping_subordinate_ids() -> None:
    with pytest.raises(SandboxUnavailable, match="alice's subordinate ids 100000"):
        _check(IdRange(165000, 1000), subuid="alice:100000:65536\n")
    with pytest.raises(SandboxUnavailable, match="/etc/subgid"):
        _check(IdRange(99000, 1001), subgid="alice:100000:65536\n")


def test_rejects_a_range_the_workers_user_namespace_does_not_map() -> None:
    with pytest.raises(SandboxUnavailable, match="uid_map"):
        _check(IdRange(0x70000000, 16), uid_map="0 100000 65536\n")


def test_rejects_ids_read_as_negative() -> None:
    with pytest.raises(SandboxUnavailable, match="within"):
        _check(IdRange(2**31 - 8, 9))


def test_reads_missing_capabilities_from_status() -> None:
    needed = {"CAP_SETUID": 7, "CAP_SETGID": 6}
    assert missing_capabilities("CapEff:\t00000000000000c0\n", needed) == []
    assert missing_capabilities("CapEff:\t0000000000000040\n", needed) == ["CAP_SETUID"]
    assert missing_capabilities("Name:\tx\n", needed) == ["CAP_SETGID", "CAP_SETUID"]


def test_each_live_sandbox_gets_a_different_id_until_none_is_left(tmp_path: Path) -> None:
    ids = HostIds(IdRange(0x70000000, 2), str(tmp_path))
    first, second = ids.lease(), ids.lease()
    assert {first.uid, second.uid} == {0x70000000, 0x70000001}
    assert (first.uid, second.gid) == (first.gid, second.uid)
    with pytest.raises(SandboxFailure) as info:
        ids.lease()
    assert info.value.cause == "start" and "all 2 sandbox uids are in use" in info.value.reason
    assert sorted(os.listdir(tmp_path)) == [str(0x70000000), str(0x70000001)]
    first.release()
    first.release()  # idempotent
    assert os.listdir(tmp_path) == [str(second.uid)]  # one file per live lease
    again = ids.lease()
    assert again.uid == first.uid
    again.release()
    second.release()
    assert os.listdir(tmp_path) == []


def test_an_id_held_by_another_process_is_not_handed_out(tmp_path: Path) -> None:
    """Leases are host-wide: another confide process's sandbox keeps its id."""
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, os, sys
        fd = os.open({str(tmp_path / str(0x70000000))!r}, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        print("held", flush=True)
        sys.stdin.read()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        ids = HostIds(IdRange(0x70000000, 2), str(tmp_path))
        lease = ids.lease()
        assert lease.uid == 0x70000001
        with pytest.raises(SandboxFailure):
            ids.lease()
        lease.release()
    finally:
        holder.communicate("")
    assert HostIds(IdRange(0x70000000, 1), str(tmp_path)).lease().uid == 0x70000000


def test_refuses_a_lock_directory_others_can_write(tmp_path: Path) -> None:
    shared = tmp_path / "ids"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(SandboxUnavailable, match="no one else can write"):
        host_ids(0x70000000, 16, str(shared))


def test_a_worker_that_cannot_switch_uids_refuses_python_tasks() -> None:
    """Root without CAP_SETUID/CAP_SETGID stands for any unprivileged worker: the
    executor refuses, it never falls back to running sandboxes as the worker."""
    script = textwrap.dedent("""
        import sys
        sys.path.insert(0, sys.argv[1])
        from pysandbox_support import executor, invocation
        from confide.executors._sandbox import SandboxUnavailable
        try:
            executor().run(invocation("def entrypoint(argv):\\n    return 'ran'\\n"))
        except SandboxUnavailable as e:
            print(e.reason)
    """)
    done = subprocess.run(
        ["setpriv", "--bounding-set=-setuid,-setgid", "--", sys.executable, "-c", script,
         str(Path(__file__).parent)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    assert done.stdout.strip() == (
        "Runtime Error: python sandbox unavailable (the worker runs as uid 0 without "
        "CAP_SETGID and CAP_SETUID, so it cannot give each sandbox its own host uid; "
        "start the server as root)"
    ), done.stderr[-2000:]
