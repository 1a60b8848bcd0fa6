"""``confide._atomic``: the one atomic, durable, private write every file write goes through."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from confide import _atomic
from confide._atomic import PUBLIC_MODE, atomic_writer, write_atomic


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secret_is_private_even_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        write_atomic(tmp_path / "key", b"secret")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "key") == 0o600
    assert (tmp_path / "key").read_bytes() == b"secret"


def test_replacing_a_world_readable_file_leaves_it_private(tmp_path: Path) -> None:
    target = tmp_path / "session.json"
    target.write_bytes(b"old")
    target.chmod(0o644)
    write_atomic(target, b"new token")
    assert _mode(target) == 0o600 and target.read_bytes() == b"new token"


def test_public_files_say_so(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        write_atomic(tmp_path / "enclave_info.toml", b"x", mode=PUBLIC_MODE)
    finally:
        os.umask(old)
    assert _mode(tmp_path / "enclave_info.toml") == 0o644


def test_the_temporary_file_is_never_readable_by_others(tmp_path: Path) -> None:
    with atomic_writer(tmp_path / "key") as f:
        f.write(b"half")
        temps = [p for p in tmp_path.iterdir()]
        assert len(temps) == 1 and temps[0].parent == tmp_path  # same dir: rename is atomic
        assert _mode(temps[0]) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["key"]


def test_crash_mid_write_keeps_the_old_content_and_no_debris(tmp_path: Path) -> None:
    target = tmp_path / "root-secret.sealed"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_writer(target) as f:
        f.write(b"partial")
        raise RuntimeError("power cut")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["root-secret.sealed"]


def test_failed_rename_keeps_the_old_content_and_no_debris(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "key"
    target.write_bytes(b"old")

    def refuse(src: object, dst: object) -> None:
        raise OSError("read-only file system")

    monkeypatch.setattr(_atomic.os, "replace", refuse)
    with pytest.raises(OSError, match="read-only"):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["key"]


def test_file_and_directory_are_synced_before_and_after_the_rename(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(_atomic.os, "fsync", fsync)
    monkeypatch.setattr(_atomic.os, "replace", replace)
    write_atomic(tmp_path / "key", b"k")
    assert events == ["fsync file", "rename", "fsync dir"]


def test_relative_target_in_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_atomic(Path("f.enc"), b"c")
    assert (tmp_path / "f.enc").read_bytes() == b"c"


def test_missing_directory_is_an_error_not_a_silent_success(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "nope" / "key", b"k")


def test_no_other_module_writes_its_own_atomic_replace() -> None:
    # One of each: os.replace appears in confide only inside _atomic.py.
    src = Path(_atomic.__file__).parent
    users = sorted(str(p.relative_to(src)) for p in src.rglob("*.py")
                   if "_gen" not in p.parts and "os.replace(" in p.read_text(encoding="utf-8"))
    assert users == ["_atomic.py"]
