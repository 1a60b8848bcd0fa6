"""The hostile corpus: every payload in ``hostile/`` is contained.

Each file declares its exact outcome in header comments::

    # expect: result <exact return value>     (Finished + Ok)
    # expect: error <cause>                   (Finished + Err, SandboxFailure.cause)
    # limits: name=value ...                  (Limits overrides for this case)
    # args: {json}                            ($WORKER_PID, $DATA_DIR, $NEIGHBOUR_PID, ...)
    # outputs: name ...                       (assigned outputs)
    # runs: N                                 (run N times, same outcome each time)

After every hostile run a normal function must still run in a fresh sandbox.
Every case runs twice: in a cold sandbox and in a pre-started one (hardened and
numpy imported before the function arrived). ``$NEIGHBOUR_PID`` is the host pid
of another sandbox's function process, waiting for its job meanwhile. After the
corpus (in each test process), the host's device nodes and the kernel knobs the
cases try to write must be as they were.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pysandbox_support import HOSTILE_DIR, MemoryTaskIO, executor, function_pids, invocation

import confide
from confide.executors._sandbox import SandboxFailure

CASES = sorted(HOSTILE_DIR.glob("*.py"))


def _header(path: Path) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.startswith("# "):
            break
        key, _, value = line[2:].partition(": ")
        fields[key] = value
    return fields


def _limits(spec: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in spec.split():
        key, _, value = item.partition("=")
        out[key] = float(value) if "." in value else int(value)
    return out


#: What the corpus tries to change on the host; compared before and after it.
HOST_KNOBS = ("/proc/sys/kernel/panic", "/proc/sys/fs/lease-break-time",
              "/proc/sys/kernel/core_pattern")  # fmt: skip
HOST_NODES = ("/dev/null", "/dev/zero", "/dev/urandom")


def _host_state() -> dict[str, object]:
    state: dict[str, object] = {path: Path(path).read_text() for path in HOST_KNOBS}
    for node in HOST_NODES:
        info = os.stat(node)
        state[node] = (info.st_mode, info.st_uid, info.st_gid)
    return state


@pytest.fixture(scope="module", autouse=True)
def host_left_unchanged() -> Iterator[None]:
    before = _host_state()
    yield
    assert _host_state() == before


@pytest.fixture(scope="module")
def neighbour() -> Iterator[int]:
    """The host pid of another sandbox's function process (pre-started, waiting)."""
    with executor(prestart=1) as ex:
        assert ex.wait_prestarted(15.0)
        (pid,) = function_pids(ex.prestarted_pids())
        yield pid


@pytest.fixture
def substitutions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, neighbour: int
) -> Iterator[dict[str, str]]:
    monkeypatch.setenv("CONFIDE_TEST_SECRET_KEY", "CANARY-do-not-leak")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "platform.key").write_bytes(b"CANARY")
    area = tmp_path / "confide-worker-area"
    area.mkdir(mode=0o700)
    (area / "input-of-another-task").write_bytes(b"CANARY")
    sock_path = str(tmp_path / "worker.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen(1)
    try:
        yield {
            "$WORKER_PID": str(os.getpid()),
            "$DATA_DIR": str(data_dir),
            "$CONFIDE_SRC": str(Path(confide.__file__).parent),
            "$UNIX_SOCKET": sock_path,
            "$NEIGHBOUR_PID": str(neighbour),
            "$PRIVATE_AREA": str(area),
        }
    finally:
        listener.close()


def test_corpus_has_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30
    for path in CASES:
        assert _header(path).get("expect", "").split(" ", 1)[0] in ("result", "error"), path


def test_corpus_tries_every_escape_found_against_a_root_worker() -> None:
    """Issue 10: each attempt that worked against a worker running as root is a case."""
    names = {p.stem for p in CASES}
    assert {"sysctl_write", "dev_node_chmod", "dev_fill", "tmp_fill", "thread_bomb_small_stacks",
            "identity", "signal_neighbour", "ptrace_neighbour", "neighbour_proc_mem",
            "read_staging_area"} <= names  # fmt: skip


@pytest.mark.parametrize("prestart", [0, 1], ids=["cold", "prestarted"])
@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_hostile_function_is_contained(
    path: Path, prestart: int, substitutions: dict[str, str]
) -> None:
    header = _header(path)
    kind, _, expected = header["expect"].partition(" ")
    arguments_text = header.get("args", "{}")
    for key, value in substitutions.items():
        arguments_text = arguments_text.replace(key, value)
    arguments = json.loads(arguments_text)
    outputs = header.get("outputs", "").split()
    with executor(prestart=prestart, **_limits(header.get("limits", ""))) as ex:
        for _ in range(int(header.get("runs", "1"))):
            if prestart:
                assert ex.wait_prestarted(15.0)
                waiting = ex.prestarted_pids()
            inv = invocation(path.read_text(), arguments, MemoryTaskIO(outputs=outputs), logs=[])
            if kind == "result":
                assert ex.run(inv) == expected
            else:
                with pytest.raises(SandboxFailure) as info:
                    ex.run(inv)
                assert info.value.cause == expected, info.value.reason
                assert info.value.reason.startswith("Runtime Error: ")
            if prestart:  # the job went to the waiting sandbox, which is gone now
                assert not set(waiting) & set(ex.prestarted_pids())
        follow_up = "def entrypoint(argv):\n    return argv[1]\n"
        assert ex.run(invocation(follow_up, {"message": "still ok"})) == "still ok"
