"""Shared fixtures for the crypto tests: the vectors folder and its table of files."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from confide.crypto._writer import THREAD_NAME

_REPO = Path(__file__).resolve().parents[2]


def _vectors_dir() -> Path:
    candidates = []
    if env := os.environ.get("CONFIDE_VECTORS"):
        candidates.append(Path(env))
    candidates += [Path("/work/shared/vectors"), _REPO.parent / "shared" / "vectors"]
    for c in candidates:
        if (c / "teaclave").is_dir():
            return c
    pytest.fail("test vectors not found (set CONFIDE_VECTORS)")


@pytest.fixture(scope="session")
def vectors() -> Path:
    return _vectors_dir()


@dataclass(frozen=True)
class PfsFixture:
    """One teaclave-file-128 row of vectors/README.md §A."""

    enc: str
    plain: str
    cmac: str

    @property
    def name(self) -> str:
        return os.path.basename(self.enc)


# vectors/README.md §A: key = 16 zero bytes for all of them.
PFS_FIXTURES = [
    PfsFixture("gbdt_training/train.enc", "gbdt_training/train.txt",
               "860030495909b84864b991865e9ad94f"),
    PfsFixture("ordered_set_intersect/psi0.txt.enc", "ordered_set_intersect/psi0.txt",
               "92f686d4ac2ba6b4ffd93bc7ac5dbf58"),
    PfsFixture("ordered_set_intersect/psi1.txt.enc", "ordered_set_intersect/psi1.txt",
               "8b3104972a6f0de949315e0b45d5dd66"),
    PfsFixture("ordered_set_join/join0.csv.enc", "ordered_set_join/join0.csv",
               "3f91d2744763445d265ea469debb74f0"),
    PfsFixture("ordered_set_join/join1.csv.enc", "ordered_set_join/join1.csv",
               "d1e5a520489c93d0254c8c22cdefab89"),
    PfsFixture("password_check/exposed_passwords.txt.enc", "password_check/exposed_passwords.txt",
               "a31dd0b7de0b6cc7e0dec1dcf7a46479"),
    PfsFixture("private_join_and_compute/three_party_data/bank_a.enc",
               "private_join_and_compute/three_party_data/bank_a.txt",
               "f6a4585a4903f8dea0ee90ac84a50dba"),
    PfsFixture("private_join_and_compute/three_party_data/bank_b.enc",
               "private_join_and_compute/three_party_data/bank_b.txt",
               "ab6065314fcbacd6971ff55d3821b51e"),
    PfsFixture("private_join_and_compute/three_party_data/bank_c.enc",
               "private_join_and_compute/three_party_data/bank_c.txt",
               "9d7dbe465806731a43008ab094c97688"),
    PfsFixture("rsa_sign/rsakey.enc", "rsa_sign/key.der", "620c16ab588ca638f3b0a2692ab078cf"),
]  # fmt: skip


class ScriptedRng:
    """An ``rng`` that returns queued values first, then deterministic filler."""

    def __init__(self, *queued: bytes) -> None:
        self._queued = list(queued)
        self._counter = 0

    def __call__(self, n: int) -> bytes:
        if self._queued:
            value = self._queued.pop(0)
            if len(value) != n:
                raise AssertionError(f"rng asked for {n} bytes, queued {len(value)}")
            return value
        self._counter += 1
        return (self._counter.to_bytes(4, "big") * (n // 4 + 1))[:n]


class NonSeekable:
    """A read/write stream without random access (a pipe or a socket)."""

    def __init__(self, data: bytes = b"") -> None:
        import io

        self._buf = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._buf.read(n)

    def write(self, b: bytes) -> int:
        return self._buf.write(b)

    def seekable(self) -> bool:
        return False

    def getvalue(self) -> bytes:
        return self._buf.getvalue()


@pytest.fixture(params=["native", "pure"])
def pfs_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a teaclave-file-128 test on the C extension's path and on the pure-Python one."""
    from confide.crypto import _pfs

    if request.param == "pure":
        monkeypatch.setattr(_pfs, "_native", None)
    elif _pfs._native is None:
        pytest.skip("confide.crypto._pfs_native is not built (no C compiler or libgcrypt20-dev)")
    return str(request.param)


@pytest.fixture
def tmp_private(tmp_path: Path) -> Iterator[Path]:
    """A private temporary directory, removed afterwards (plaintext may live here)."""
    tmp_path.chmod(0o700)
    yield tmp_path


def writer_threads() -> list[threading.Thread]:
    """The OrderedWriter helper threads alive now."""
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]
