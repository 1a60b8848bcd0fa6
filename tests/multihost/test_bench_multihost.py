"""bench/multihost.py (issue 12 acceptance): the multi-host topology under load,
tasks/s and CPU per role with a labelled projection of cores per 1,000 tasks/s.

A small run end to end (marker ``multihost``), and the CPU accounting of
process trees on its own: a grandchild's CPU counts, a reaped child's too,
an unrelated process's does not.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import _skip_unless_possible, env

BENCH = Path(__file__).resolve().parents[2] / "bench"
SPLIT, AIO = ("multi-host (every role on its own host)",
              "baseline: all-in-one confide serve (2 local workers)")
SPLIT_ROWS = ("db", "keys", "authentication", "frontend (2 replicas)", "scheduler",
              "workers (2 hosts, children)", "clients", "platform (every row but clients)")
AIO_ROWS = ("db", "all-in-one (every role, 2 workers)", "clients",
            "platform (every row but clients)")


def _bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH))  # the script imports bench/_speed.py
    spec = importlib.util.spec_from_file_location("bench_multihost", BENCH / "multihost.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_multihost", module)  # its dataclasses look it up
    spec.loader.exec_module(module)
    return module


TICKS_SHORT = 0.05
_BURN = """import sys, time
t = time.process_time()
while time.process_time() - t < float(sys.argv[1]):
    pass
print("burnt", flush=True)
if sys.argv[2:] == ["stay"]:
    time.sleep(120)
"""
_MID = """import subprocess, sys, time
subprocess.Popen([sys.executable, sys.argv[1], "0.4", "stay"])
time.sleep(120)
"""
_ROOT = """import subprocess, sys, time
burn, mid = sys.argv[1], sys.argv[2]
subprocess.run([sys.executable, burn, "0.4"], check=True, stdout=subprocess.DEVNULL)
subprocess.Popen([sys.executable, mid, burn], stdout=subprocess.DEVNULL)
print("started", flush=True)
time.sleep(120)
"""


def test_tree_cpu_counts_grandchildren_and_reaped_children(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The root reaps a child that burnt 0.4 s (its time is now the root's cutime) and
    keeps a child whose own child burns 0.4 s; a bystander burns 0.3 s outside the tree."""
    bench = _bench(monkeypatch)
    for name, code in (("burn.py", _BURN), ("mid.py", _MID), ("root.py", _ROOT)):
        (tmp_path / name).write_text(code)
    burn, mid, root = (str(tmp_path / n) for n in ("burn.py", "mid.py", "root.py"))
    bystander = subprocess.Popen([sys.executable, burn, "0.3", "stay"], stdout=subprocess.PIPE,
                                 text=True, start_new_session=True)
    proc = subprocess.Popen([sys.executable, root, burn, mid], stdout=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        assert proc.stdout is not None and bystander.stdout is not None
        assert proc.stdout.readline().strip() == "started"
        assert bystander.stdout.readline().strip() == "burnt"
        deadline, cpu, previous = time.monotonic() + 30, 0.0, -1.0
        # /proc reports whole clock ticks (truncated, user and system apportioned by
        # sampling): a few ticks short of the burners' own process_time() is the same CPU.
        while (cpu < 0.8 - TICKS_SHORT or cpu != previous) and time.monotonic() < deadline:
            time.sleep(0.2)  # until the grandchild is done burning: the sum stops growing
            previous, cpu = cpu, bench.tree_cpu([proc.pid])
        # Both burners (0.8 s) plus three interpreter start-ups, not the bystander's 0.3 s.
        assert 0.8 - TICKS_SHORT <= cpu < 1.8, cpu
        alone = bench.tree_cpu([bystander.pid])
        assert 0.3 - TICKS_SHORT <= alone < 0.8, alone
        assert bench.tree_cpu([proc.pid, bystander.pid]) == pytest.approx(cpu + alone, abs=0.1)
        assert bench.tree_cpu([]) == 0.0
    finally:
        for p in (proc, bystander):  # each in a session of its own: its whole tree
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)


@pytest.mark.multihost
def test_a_small_run_prints_the_tables_with_sane_numbers(tmp_path: Path) -> None:
    _skip_unless_possible()
    out_json = tmp_path / "runs.json"
    out = subprocess.run([sys.executable, str(BENCH / "multihost.py"), "--tasks", "40",
                          "--clients", "4", "--procs", "2", "--runs", "2", "--idle", "1",
                          "--json", str(out_json)], capture_output=True, text=True,
                         env=env(), timeout=900)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    lines = out.stdout.splitlines()
    tables = [(f"run {i}, {SPLIT}: 40 builtin-echo tasks, 4 clients", SPLIT_ROWS)
              for i in (1, 2)]
    tables += [(f"run {i}, {AIO}: 40 builtin-echo tasks, 4 clients", AIO_ROWS) for i in (1, 2)]
    tables += [(f"{SPLIT}: median of 2 runs", SPLIT_ROWS), (f"{AIO}: median of 2 runs", AIO_ROWS)]
    for title, names in tables:
        start = lines.index(title)
        assert "tasks/s" in lines[start + 1] and "(40 ok, 0 failed)" in lines[start + 1]
        assert "cores per 1,000 tasks/s (LINEAR PROJECTION)" in lines[start + 2]
        rows = lines[start + 3:start + 3 + len(names)]
        assert [r.strip().rsplit(None, 4)[0] for r in rows] == list(names), rows
        cells = [[float(x) for x in row.split()[-4:]] for row in rows]
        for cpu_s, ms, idle, cores in cells:
            assert min(cpu_s, ms, idle, cores) >= 0
            assert cores == ms  # the projection is CPU s per task times 1,000, linear
        # The platform row sums every row but the load generator (rounded to 0.01 each).
        assert cells[-1][0] == pytest.approx(sum(c[0] for c in cells[:-2]), abs=0.05)
    assert any(line.startswith("multi-host vs all-in-one (medians): tasks/s ")
               for line in lines)
    assert "is a LINEAR PROJECTION" in out.stdout
    split, aio = json.loads(out_json.read_text())["targets"]
    assert (split["title"], aio["title"]) == (SPLIT, AIO)
    for target, busy in ((split, ("db", "frontend (2 replicas)", "scheduler",
                                  "workers (2 hosts, children)", "clients")),
                         (aio, AIO_ROWS[:-1])):
        assert len(target["runs"]) == 2
        for run in target["runs"]:
            assert (run["tasks"], run["failed"]) == (40, 0)
            assert run["tasks_per_s"] > 0 and 0 < run["p50_ms"] <= run["p95_ms"]
            ms = run["cpu_ms_per_task"]
            assert list(ms) == list((SPLIT_ROWS if target is split else AIO_ROWS)[:-1])
            # Rows that work for every task; keys and authentication may measure 0
            # (enrolment and login happen before the timed window).
            for row in busy:
                assert ms[row] > 0, (row, ms)
            # Everything shares this machine: no more CPU than all cores for the window.
            assert sum(run["cpu_s"].values()) <= (os.cpu_count() or 1) * run["seconds"] * 1.2


def test_the_bench_refuses_to_start_without_root_or_iproute2(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    bench = _bench(monkeypatch)
    monkeypatch.setattr(bench.os, "geteuid", lambda: 1000)
    assert bench.missing_prerequisites() == "network namespaces need root"
    monkeypatch.setattr(sys, "argv", ["multihost.py", "--tasks", "10"])
    with pytest.raises(SystemExit, match=r"bench/multihost\.py network namespaces need root"):
        bench.main()  # before it makes any namespace
    assert capsys.readouterr().out == ""
    monkeypatch.setattr(bench.os, "geteuid", lambda: 0)
    monkeypatch.setattr(bench.shutil, "which", lambda name: None if name == "ip" else "/x")
    assert bench.missing_prerequisites() == "needs iproute2 and runuser"
