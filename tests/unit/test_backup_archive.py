"""The backup archive (issue 13 item 7): what goes in, and every way a wrong
passphrase or a changed, cut, reordered or crafted archive is refused with a
clear message and leaves nothing restored."""

from __future__ import annotations

import io
import sqlite3
import struct
import tarfile
from pathlib import Path

import pytest

from confide.node._archive import (
    HEADER_SIZE,
    MAGIC,
    MAX_CHUNK,
    MAX_MEMORY_KIB,
    MAX_PARALLELISM,
    MAX_TIME_COST,
    ArchiveReader,
    ArchiveWriter,
    DamagedArchive,
    Kdf,
    NotAnArchive,
    TruncatedArchive,
    WrongPassphrase,
)
from confide.node._backup import BackupError, backup, restore

CHEAP = Kdf(time_cost=1, memory_kib=64, parallelism=1)
PASS = "correct horse battery staple"
_PARAMS_AT = len(MAGIC) + 16


def _seal(plain: bytes, chunk: int = 100, passphrase: bytes = PASS.encode()) -> bytes:
    out = io.BytesIO()
    writer = ArchiveWriter(out, passphrase, kdf=CHEAP, chunk=chunk)
    writer.write(plain)
    writer.close()
    return out.getvalue()


def _open(data: bytes, passphrase: bytes = PASS.encode()) -> bytes:
    reader = ArchiveReader(io.BytesIO(data), passphrase)
    plain = reader.read()
    reader.finish()
    return plain


def _chunks(data: bytes) -> list[bytes]:
    """The archive's chunk records (length prefix included), in order."""
    at, out = HEADER_SIZE, []
    while at < len(data):
        (n,) = struct.unpack_from(">I", data, at)
        out.append(data[at:at + 4 + n])
        at += 4 + n
    return out


# -- the format ------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 1, 99, 100, 101, 1000])
def test_archive_round_trips_across_chunk_boundaries(size: int) -> None:
    plain = bytes(range(256)) * 4
    assert _open(_seal(plain[:size])) == plain[:size]


def test_a_wrong_passphrase_is_named_as_such() -> None:
    with pytest.raises(WrongPassphrase, match="wrong passphrase"):
        _open(_seal(b"data"), b"not the passphrase")


@pytest.mark.parametrize("where", ["first chunk", "last chunk", "a length"])
def test_a_tampered_chunk_is_refused(where: str) -> None:
    data = bytearray(_seal(b"x" * 350))
    at = {"first chunk": HEADER_SIZE + 10, "last chunk": len(data) - 3,
          "a length": HEADER_SIZE + 3}[where]
    data[at] ^= 1
    with pytest.raises(DamagedArchive, match="damaged"):
        _open(bytes(data))


def test_a_tampered_header_is_refused() -> None:
    data = bytearray(_seal(b"data"))
    data[len(MAGIC) + 2] ^= 1  # the salt: another key, so the check fails
    with pytest.raises(WrongPassphrase, match="header was changed"):
        _open(bytes(data))


@pytest.mark.parametrize("cut", ["mid-header", "mid-chunk", "a whole last chunk",
                                 "just the last byte"])
def test_a_truncated_archive_is_refused(cut: str) -> None:
    data = _seal(b"y" * 300)  # 3 chunks: 100, 100, 100 (last)
    chunks = _chunks(data)
    end = {"mid-header": HEADER_SIZE - 5, "mid-chunk": HEADER_SIZE + 50,
           "a whole last chunk": len(data) - len(chunks[-1]),
           "just the last byte": len(data) - 1}[cut]
    with pytest.raises(TruncatedArchive, match="truncated"):
        _open(data[:end])


def test_reordered_or_repeated_chunks_are_refused() -> None:
    data = _seal(b"a" * 100 + b"b" * 100 + b"c" * 50)
    head, chunks = data[:HEADER_SIZE], _chunks(data)
    for order in ([1, 0, 2], [0, 0, 1, 2]):
        with pytest.raises(DamagedArchive, match=r"chunk [01] does not"):
            _open(head + b"".join(chunks[i] for i in order))


def test_data_after_the_last_chunk_is_refused() -> None:
    with pytest.raises(DamagedArchive, match="after its last chunk"):
        _open(_seal(b"data") + b"\0")


def test_a_file_that_is_no_archive_is_named_as_such() -> None:
    with pytest.raises(NotAnArchive, match="not a confide backup"):
        _open(b"SQLite format 3\0" + bytes(100))


@pytest.mark.parametrize("field, value", [
    (0, MAX_TIME_COST + 1), (1, MAX_MEMORY_KIB + 1), (2, MAX_PARALLELISM + 1),
    (3, MAX_CHUNK + 1), (0, 0), (3, 0)])
def test_a_header_over_a_cap_is_refused_before_deriving_a_key(field: int, value: int) -> None:
    data = bytearray(_seal(b"data"))
    struct.pack_into(">I", data, _PARAMS_AT + 4 * field, value)
    with pytest.raises(DamagedArchive, match="out of bounds"):
        _open(bytes(data))


def test_a_chunk_claiming_more_than_the_chunk_size_is_refused() -> None:
    data = bytearray(_seal(b"z" * 50))
    struct.pack_into(">I", data, HEADER_SIZE, 100 + 16 + 1)
    with pytest.raises(DamagedArchive, match="claims 117 bytes"):
        _open(bytes(data))


# -- what a backup holds, and restore's refusals ------------------------------------
def _data_dir(root: Path) -> Path:
    d = root / "data"
    (d / "blobs" / ".tmp").mkdir(parents=True)
    (d / "fusion").mkdir()
    (d / "root-secret.sealed").write_bytes(b"sealed")
    (d / "sim-sealing.key").write_bytes(b"k" * 32)
    (d / "blobs" / "b1").write_bytes(b"ciphertext")
    (d / "blobs" / ".tmp" / "put-x").write_bytes(b"half an upload")
    (d / "fusion" / "f1").write_bytes(b"fusion")
    (d / ".api-cert.pem.abc.tmp").write_bytes(b"half a write")
    with sqlite3.connect(d / "confide.db") as c:
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("CREATE TABLE t (x)")
        c.execute("INSERT INTO t VALUES (42)")
    return d


def _files(d: Path) -> set[str]:
    return {p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file()}


def test_backup_holds_a_database_snapshot_and_the_files_not_the_transient_ones(
        tmp_path: Path) -> None:
    d = _data_dir(tmp_path)
    writer = sqlite3.connect(d / "confide.db")  # an open writer: the snapshot is consistent
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO t VALUES (43)")  # not committed: not in the snapshot
    summary = backup(d, tmp_path / "a.bak", PASS, kdf=CHEAP)
    writer.rollback()
    writer.close()
    assert summary.database == "sqlite"
    assert b"ciphertext" not in (tmp_path / "a.bak").read_bytes()  # encrypted
    restored = tmp_path / "restored"
    manifest = restore(tmp_path / "a.bak", restored, PASS)
    assert manifest["database"] == "sqlite"
    assert _files(restored) == {"confide.db", "root-secret.sealed", "sim-sealing.key",
                                "blobs/b1", "fusion/f1"}
    assert (restored / "blobs" / ".tmp").is_dir()
    assert (restored / "sim-sealing.key").read_bytes() == b"k" * 32
    with sqlite3.connect(restored / "confide.db") as c:
        assert c.execute("SELECT x FROM t").fetchall() == [(42,)]
    assert restored.stat().st_mode & 0o777 == 0o700


def test_a_data_dir_without_sqlite_backs_up_its_files_for_pg_dump_beside(
        tmp_path: Path) -> None:
    d = _data_dir(tmp_path)
    (d / "confide.db").unlink()
    assert backup(d, tmp_path / "a.bak", PASS, kdf=CHEAP).database == "external"
    assert restore(tmp_path / "a.bak", tmp_path / "r", PASS)["database"] == "external"


@pytest.mark.parametrize("damage", ["wrong passphrase", "tampered", "truncated"])
def test_a_failed_restore_leaves_nothing_behind(tmp_path: Path, damage: str) -> None:
    d = _data_dir(tmp_path)
    backup(d, tmp_path / "a.bak", PASS, kdf=CHEAP)
    data = bytearray((tmp_path / "a.bak").read_bytes())
    passphrase = PASS
    if damage == "wrong passphrase":
        passphrase = "another long passphrase"
    elif damage == "tampered":
        data[len(data) // 2] ^= 0x40
    else:
        del data[-20:]
    (tmp_path / "a.bak").write_bytes(bytes(data))
    target = tmp_path / "new"
    with pytest.raises((WrongPassphrase, DamagedArchive, TruncatedArchive)):
        restore(tmp_path / "a.bak", target, passphrase)
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bak", "data"]  # no staging left


def test_restore_refuses_a_non_empty_directory_and_accepts_an_empty_one(
        tmp_path: Path) -> None:
    backup(_data_dir(tmp_path), tmp_path / "a.bak", PASS, kdf=CHEAP)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("mine")
    with pytest.raises(BackupError, match="not empty"):
        restore(tmp_path / "a.bak", busy, PASS)
    assert (busy / "x").read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    restore(tmp_path / "a.bak", empty, PASS)
    assert (empty / "root-secret.sealed").read_bytes() == b"sealed"


def _crafted(tmp_path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    """An authentic archive (right passphrase) whose tar holds ``member``."""
    path = tmp_path / "crafted.bak"
    with open(path, "wb") as out:
        writer = ArchiveWriter(out, PASS.encode(), kdf=CHEAP)
        with tarfile.open(fileobj=writer, mode="w|") as tar:  # type: ignore[call-overload]
            manifest = b'{"format": 1, "database": "sqlite"}'
            info = tarfile.TarInfo("confide-backup.json")
            info.size = len(manifest)
            tar.addfile(info, io.BytesIO(manifest))
            tar.addfile(member, io.BytesIO(data) if data else None)
        writer.close()
    return path


@pytest.mark.parametrize("name, kind", [("../escape", tarfile.REGTYPE),
                                        ("/etc/escape", tarfile.REGTYPE),
                                        ("blobs/link", tarfile.SYMTYPE)])
def test_restore_refuses_paths_outside_the_directory_and_links(
        tmp_path: Path, name: str, kind: bytes) -> None:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
    member.size = 1 if kind == tarfile.REGTYPE else 0
    archive = _crafted(tmp_path, member, b"x" if kind == tarfile.REGTYPE else b"")
    with pytest.raises(DamagedArchive, match=r"outside the data directory|link or device"):
        restore(archive, tmp_path / "new", PASS)
    assert not (tmp_path / "new").exists() and not (tmp_path / "escape").exists()


def test_backup_refusals(tmp_path: Path) -> None:
    d = _data_dir(tmp_path)
    with pytest.raises(BackupError, match="at least 12 characters"):
        backup(d, tmp_path / "a.bak", "short", kdf=CHEAP)
    with pytest.raises(BackupError, match="inside the data directory"):
        backup(d, d / "a.bak", PASS, kdf=CHEAP)
    (tmp_path / "exists.bak").write_bytes(b"keep")
    with pytest.raises(BackupError, match="will not overwrite"):
        backup(d, tmp_path / "exists.bak", PASS, kdf=CHEAP)
    with pytest.raises(BackupError, match="not a confide data directory"):
        backup(tmp_path / "nothing", tmp_path / "b.bak", PASS, kdf=CHEAP)
