"""Teaclave's MesaPy executor fixture (vectors/teaclave/functions/mesapy) on CPython 3."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pysandbox_support import MemoryTaskIO, executor, invocation


@pytest.fixture
def mesapy_vectors() -> Path:
    candidates = [os.environ.get("CONFIDE_VECTORS"), "/work/shared/vectors"]
    candidates.append(str(Path(__file__).resolve().parents[3] / "shared" / "vectors"))
    for base in candidates:
        if base and (Path(base) / "teaclave/functions/mesapy/input.txt").exists():
            return Path(base) / "teaclave/functions/mesapy"
    pytest.fail("test vectors not found (set CONFIDE_VECTORS)")


# Teaclave's executor unit test payload, ported to Python 3 (bytes reads, str(e) not e.message).
PAYLOAD = """
def entrypoint(argv):
    assert argv[0] == "arg1" and argv[1] == "Hello"
    with teaclave_open("in_f1", "rb") as f:
        line = f.readline()
        assert line == b"Hello\\n"
    try:
        teaclave_open("invalid_in_file", "rb")
    except RuntimeError as e:
        assert str(e) == "fileio_init: teaclave_ffi_error"
    with teaclave_open("out_f1", "wb") as f:
        f.write(b"This message is from Mesapy!")
    return None
"""


def test_teaclave_mesapy_fixture_runs_unchanged_in_behaviour(mesapy_vectors: Path) -> None:
    data = (mesapy_vectors / "input.txt").read_bytes()
    assert data == b"Hello\nWorld"
    io = MemoryTaskIO({"in_f1": data}, ["out_f1"])
    assert executor().run(invocation(PAYLOAD, {"arg1": "Hello"}, io)) == ""
    assert io.written == {"out_f1": b"This message is from Mesapy!"}
    assert (mesapy_vectors / "output.txt").read_bytes() == b""  # the fixture starts empty
