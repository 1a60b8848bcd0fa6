"""One confide server per test process, opened to a local HTTP file host and a file root."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.platform._server import Server

from ._httpd import FileHost


def _vectors_root() -> Path:
    env = os.environ.get("CONFIDE_VECTORS")
    candidates = [Path(env)] if env else []
    candidates += [Path("/work/shared/vectors"),
                   Path(__file__).resolve().parents[2].parent / "shared" / "vectors"]
    for path in candidates:
        if (path / "teaclave" / "functions").is_dir():
            return path
    raise FileNotFoundError("test vectors not found (set CONFIDE_VECTORS)")


@pytest.fixture(scope="session")
def functions_dir() -> Path:
    """``vectors/teaclave/functions``."""
    return _vectors_root() / "teaclave" / "functions"


@pytest.fixture(scope="session")
def file_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileHost]:
    host = FileHost(tmp_path_factory.mktemp("http-root")).start()
    yield host
    host.stop()


@pytest.fixture(scope="session")
def file_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("file-root")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, file_host: FileHost,
           file_root: Path) -> Iterator[Server]:
    """``confide serve`` allowing loopback on the file host's port and file:// in file_root."""
    s = Server(tmp_path_factory.mktemp("data-server") / "data", extra_args=[
        "--allow-loopback-port", str(file_host.port), "--file-root", str(file_root)]).start()
    yield s
    s.stop()
