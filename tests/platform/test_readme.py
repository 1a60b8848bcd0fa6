"""The README's walk-through runs as written (against a server of the test's own)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from ._server import Server

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_walk_through_runs(server: Server) -> None:
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert code is not None
    text = code.group(1)
    original = 'Client.connect_data_dir(Path("confide-data"), "localhost")'
    assert original in text
    text = text.replace(original, (
        f'Client.connect_data_dir(Path({str(server.data_dir)!r}), "127.0.0.1", '
        f'authentication_port={server.ports["authentication"]}, '
        f'frontend_port={server.ports["frontend"]})'))
    # The walk-through registers fixed user names; make them unique on the shared server.
    for name in ("acme", "alice", "bob"):
        text = re.sub(rf'"{name}"', f'"{name}-readme"', text)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(text, str(README), "exec"), {})
    assert out.getvalue().splitlines() == ["b'2 users join the task in total.'", "b'id2, 25\\n'"]
