"""``confide demo`` is the first thing a new user runs: it must succeed, quickly."""

from __future__ import annotations

import os
import subprocess
import sys


def test_demo_runs_a_two_bank_private_join_and_exits_zero() -> None:
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "confide", "demo"], capture_output=True,
                          text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "bob (bank-b) may not use it: PERMISSION_DENIED" in out
    assert "bob cannot see the task: PERMISSION_DENIED" in out
    assert "result '2 users join the task in total.'" in out
    for who, i in (("alice", 0), ("bob", 1)):
        assert f"{who} downloaded and decrypted output {i}: c, 470000; e, 5033000" in out
    assert "alice cannot even look at bob's output: PERMISSION_DENIED" in out
    assert "demo finished" in out
    assert "Traceback" not in proc.stderr
