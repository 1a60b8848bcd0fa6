"""CI runs the README's test command, and that command fails when ruff or mypy fail."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Stand-ins for the slow steps: `true` succeeds, `false` fails, whatever the arguments.
QUIET = {"BOOTSTRAP": "true", "PYTHON": "true", "RUFF": "true", "MYPY": "true"}
# Run as a child of `make test` (CI), make would pass its own flags and overrides down.
ENV = {k: v for k, v in os.environ.items()
       if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"}}


def _make(target: str, **tools: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("make") is None:
        pytest.fail("make is not installed (scripts/system-packages.txt)")
    args = [f"{k}={v}" for k, v in {**QUIET, **tools}.items()]
    return subprocess.run(["make", "--no-print-directory", "-C", str(REPO), target, *args],
                          capture_output=True, text=True, timeout=60, check=False, env=ENV)


def test_ci_runs_exactly_the_readme_test_command() -> None:
    commands = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith(("#", "set ", "cd "))]
    assert commands == ["make test"]
    assert "`make test` is exactly what CI runs (`.ci/run`)" in (REPO / "README.md").read_text()


def test_make_test_runs_ruff_and_strict_mypy_before_the_suite() -> None:
    env = {**ENV, "PYTHON": "python-from-env", "RUFF": "ruff-from-env"}  # ignored
    proc = subprocess.run(["make", "-n", "--no-print-directory", "-C", str(REPO), "test"],
                          capture_output=True, text=True, timeout=60, check=True, env=env)
    assert proc.stdout.splitlines() == [
        "scripts/bootstrap.sh dev",
        ".venv/bin/ruff check src tests bench scripts",
        ".venv/bin/mypy --strict src",
        ".venv/bin/python -m pytest -n 2 --dist loadfile",
    ]


def test_make_test_passes_when_every_step_passes() -> None:
    assert _make("test").returncode == 0


@pytest.mark.parametrize("tool", ["RUFF", "MYPY"])
def test_make_test_fails_when_a_linter_fails(tool: str) -> None:
    proc = _make("test", **{tool: "false"})
    assert proc.returncode != 0
    assert "true -m pytest" not in proc.stdout  # the suite did not run after the failure


def test_make_test_fails_when_the_suite_fails() -> None:
    assert _make("test", PYTHON="false").returncode != 0
