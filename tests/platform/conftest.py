from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ._server import Server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One all-in-one server for the tests that do not restart it."""
    s = Server(tmp_path_factory.mktemp("shared") / "data").start()
    yield s
    s.stop()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[Server]:
    """A server of the test's own (restart, crash and failure tests)."""
    s = Server(tmp_path / "data", executor_timeout=3.0)
    yield s
    s.stop()
