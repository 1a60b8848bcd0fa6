"""Run the ``confide`` command a user types: the console script installed in this venv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

#: ``.venv/bin/confide``, written by ``pip install -e .`` from pyproject's [project.scripts].
CONFIDE = Path(sys.executable).with_name("confide")


def run_confide(*args: str | Path, timeout: float = 120.0,
                cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed ``confide`` with ``args``; wide columns so rich does not wrap."""
    if not CONFIDE.is_file():
        pytest.fail(f"{CONFIDE} is not installed: run scripts/bootstrap.sh dev")
    env = {**os.environ, "COLUMNS": "200", "TERM": "dumb"}
    return subprocess.run([str(CONFIDE), *(str(a) for a in args)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=cwd, check=False)
