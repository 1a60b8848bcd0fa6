"""The README's CLI-only three-party walk-through runs verbatim through the installed
``confide`` against a ``confide serve -d confide-data`` the test starts in the same
directory (the block is extracted from README.md, not copied here)."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._entry_point import CONFIDE
from tests.platform._server import Server

from ._docs import REPO

HEADING = "### The same with the CLI only"


def readme_cli_block(text: str) -> str:
    """The first ```bash block after the CLI-only heading."""
    start = text.index(HEADING)
    m = re.search(r"```bash\n(.*?)```", text[start:], re.S)
    assert m is not None, f"no bash block after {HEADING!r}"
    return m.group(1)


@pytest.fixture
def cli_server(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path / "confide-data").start()
    yield server
    server.stop()


def cli_env(server: Server, home: Path) -> dict[str, str]:
    return {**os.environ, "CONFIDE_HOME": str(home), "CONFIDE_HOST": "127.0.0.1",
            "CONFIDE_AUTHENTICATION_PORT": str(server.ports["authentication"]),
            "CONFIDE_FRONTEND_PORT": str(server.ports["frontend"]),
            "PATH": f"{CONFIDE.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "COLUMNS": "200", "TERM": "dumb"}


def test_the_readme_cli_walk_through_runs_verbatim(cli_server: Server, tmp_path: Path) -> None:
    block = readme_cli_block((REPO / "README.md").read_text(encoding="utf-8"))
    assert "confide -p alice task invoke" in block
    script = "set -euxo pipefail\n" + block
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          env=cli_env(cli_server, tmp_path / "home"), timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "Traceback" not in proc.stderr
    assert (tmp_path / "a-result.txt").read_text() == "id2, 25\n"
    assert (tmp_path / "b-result.txt").read_text() == "id2, 25\n"
    assert proc.stdout.endswith("id2, 25\n")  # the block's last line: cat a-result.txt
    # bob's review showed what his approval covers, with the function's hash.
    assert "code sha256: " in proc.stdout and "owner:       acme" in proc.stdout
    # No key or password reached a command line (the profiles hold the keys, mode 0600).
    assert "pw-alice" not in "".join(block.split("echo pw-alice |"))
    for key_file in (tmp_path / "home" / "profiles" / "alice" / "files").iterdir():
        assert key_file.stat().st_mode & 0o077 == 0
