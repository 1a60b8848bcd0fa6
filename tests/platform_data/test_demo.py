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


def test_inference_demo_three_owners_get_labels_equal_to_a_plain_run_and_exits_zero() -> None:
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "confide", "demo", "--scenario", "inference"],
                          capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    for engine in ("onnx", "wasm"):
        assert f"[{engine}] D created task" in out
        assert "equal to a plain local run of the same model on the same images" in out
    assert "modelco cannot see the business's images: PERMISSION_DENIED" in out
    assert "modelco cannot see the labels: PERMISSION_DENIED" in out
    assert "shop cannot see the model: PERMISSION_DENIED" in out
    assert "engineco cannot see the model: PERMISSION_DENIED" in out
    assert "engineco cannot see the images: PERMISSION_DENIED" in out
    assert "shop cannot read the engine's code: code withheld (SHA-256 only)" in out
    assert "demo finished" in out
    assert "Traceback" not in proc.stderr


def test_demo_refuses_an_unknown_scenario() -> None:
    proc = subprocess.run([sys.executable, "-m", "confide", "demo", "--scenario", "nope"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1  # usage (docs/cli.md)
    assert "must be one of join, inference" in proc.stderr
    assert "Traceback" not in proc.stderr
