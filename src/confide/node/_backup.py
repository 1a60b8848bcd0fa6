"""``confide backup`` / ``confide restore``: a data directory in one encrypted archive.

The archive (``_archive``: argon2id + AES-256-GCM in chunks) holds a tar
stream: ``confide-backup.json`` (what is inside), then ``confide.db`` (a
snapshot taken with SQLite's online backup API: consistent while the server
writes), then every other file of the data directory: the sealed root secret,
the sim sealing key, ``blobs/``, ``fusion/``, certificates and trust files,
the attestation service's keys. Left out: the live SQLite files (the snapshot
replaces them), uploads still in progress (``blobs/.tmp/``) and the
temporary files of atomic writes. The snapshot is taken before the files are
read, and blobs and fusion files are written once, so every file a snapshot
row names is in the archive.

With PostgreSQL the data directory has no database: back the database up with
``pg_dump`` (it holds sealed rows only) and this archive holds the files.

Restoring writes into a new directory beside the target and renames it into
place only when the whole archive authenticated, so a wrong passphrase or a
damaged or truncated archive leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import shutil
import sqlite3
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .._atomic import atomic_writer
from ._archive import DEFAULT_KDF, ArchiveError, ArchiveReader, ArchiveWriter, DamagedArchive, Kdf

__all__ = ["BackupError", "BackupSummary", "backup", "restore"]

MANIFEST = "confide-backup.json"
DATABASE = "confide.db"
_FORMAT = 1
_LIVE_DB = {DATABASE, f"{DATABASE}-wal", f"{DATABASE}-shm", f"{DATABASE}-journal"}
_ROOT_SECRET = "root-secret.sealed"  # noqa: S105 - a file name
MIN_PASSPHRASE_CHARS = 12


class BackupError(Exception):
    """The backup or the restore cannot be done: the message says why."""


@dataclass(frozen=True)
class BackupSummary:
    files: int
    bytes: int
    database: str  # "sqlite" (a snapshot inside) or "external" (PostgreSQL: pg_dump it)


def _version() -> str:
    try:
        return importlib.metadata.version("confide")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a checkout
        return "unknown"


def check_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise BackupError(f"the passphrase must have at least {MIN_PASSPHRASE_CHARS} characters")


def _skipped(rel: PurePosixPath) -> bool:
    if rel.parts[0] == "blobs" and len(rel.parts) > 1 and rel.parts[1] == ".tmp":
        return len(rel.parts) > 2  # the directory itself is kept, its uploads are not
    name = rel.name
    return (len(rel.parts) == 1 and name in _LIVE_DB) or (
        name.startswith(".") and name.endswith(".tmp"))  # an atomic write under way


def _walk(data_dir: Path) -> Iterator[tuple[PurePosixPath, Path]]:
    for root, dirs, files in os.walk(data_dir):
        dirs.sort()
        base = Path(root)
        for name in [*dirs, *sorted(files)]:
            path = base / name
            rel = PurePosixPath(path.relative_to(data_dir).as_posix())
            if not _skipped(rel):
                yield rel, path


@contextlib.contextmanager
def _snapshot(db: Path) -> Iterator[Path]:
    """A consistent copy of the SQLite database (online backup API), checked."""
    with tempfile.TemporaryDirectory(prefix="confide-backup-") as tmp:
        copy = Path(tmp) / DATABASE
        try:
            src = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
            try:
                dst = sqlite3.connect(copy)
                try:
                    src.backup(dst)
                    dst.execute("PRAGMA journal_mode=DELETE")
                    ok = dst.execute("PRAGMA integrity_check").fetchone()
                finally:
                    dst.close()
            finally:
                src.close()
        except sqlite3.Error as e:
            raise BackupError(f"cannot snapshot the database {db}: {e}") from e
        if ok is None or ok[0] != "ok":
            raise BackupError(f"the database snapshot fails its integrity check: {ok}")
        yield copy


def _add_file(tar: tarfile.TarFile, arcname: str, path: Path, mode: int | None = None) -> int:
    """Add ``path`` as read through one descriptor (a file replaced meanwhile is
    read whole, old or new); 0 when it vanished first."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return 0
    with f:
        info = tar.gettarinfo(arcname=arcname, fileobj=f)
        info.uid = info.gid = 0
        if mode is not None:
            info.mode = mode
        info.uname = info.gname = ""
        tar.addfile(info, f)
        return info.size


def backup(data_dir: Path, output: Path, passphrase: str, *,
           kdf: Kdf = DEFAULT_KDF) -> BackupSummary:
    """Write ``data_dir`` (with a snapshot of its SQLite database) to ``output``, encrypted."""
    check_passphrase(passphrase)
    if not (data_dir / _ROOT_SECRET).is_file():
        raise BackupError(f"{data_dir} is not a confide data directory (no {_ROOT_SECRET})")
    if output.exists():
        raise BackupError(f"{output} exists: will not overwrite it")
    if output.resolve().is_relative_to(data_dir.resolve()):
        raise BackupError("the archive cannot be written inside the data directory")
    has_db = (data_dir / DATABASE).is_file()
    files = size = 0
    with contextlib.ExitStack() as stack:
        snapshot = stack.enter_context(_snapshot(data_dir / DATABASE)) if has_db else None
        out = stack.enter_context(atomic_writer(output))
        writer = ArchiveWriter(out, passphrase.encode(), kdf=kdf)
        with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            manifest = json.dumps({
                "format": _FORMAT, "confide": _version(),
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "database": "sqlite" if has_db else "external"}, sort_keys=True).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode = len(manifest), 0o600
            tar.addfile(info, _BytesReader(manifest))
            if snapshot is not None:
                size += _add_file(tar, DATABASE, snapshot, 0o600)
                files += 1
            for rel, path in _walk(data_dir):
                mode = path.lstat().st_mode
                if stat.S_ISDIR(mode):
                    info = tarfile.TarInfo(str(rel))
                    info.type, info.mode = tarfile.DIRTYPE, stat.S_IMODE(mode)
                    tar.addfile(info)
                elif stat.S_ISREG(mode):
                    size += _add_file(tar, str(rel), path)
                    files += 1
                # sockets, pipes and symbolic links are not data: left out
        writer.close()
    return BackupSummary(files, size, "sqlite" if has_db else "external")


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self._data, self._at = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n < 0 else self._at + n
        chunk, self._at = self._data[self._at:end], min(end, len(self._data))
        return chunk


def _member_path(staging: Path, member: tarfile.TarInfo) -> Path:
    rel = PurePosixPath(member.name)
    if rel.is_absolute() or not rel.parts or any(p in ("", ".", "..") for p in rel.parts):
        raise DamagedArchive(f"the archive names a path outside the data directory: "
                             f"{member.name!r}")
    return staging.joinpath(*rel.parts)


def _extract(reader: ArchiveReader, staging: Path) -> dict[str, object]:
    manifest: dict[str, object] | None = None
    tar = tarfile.open(fileobj=reader, mode="r|")  # type: ignore[call-overload]
    with tar:
        for member in tar:
            if manifest is None:
                if member.name != MANIFEST or not member.isfile():
                    raise DamagedArchive("not a confide backup: no manifest first")
                f = tar.extractfile(member)
                if f is None or member.size > 1 << 16:
                    raise DamagedArchive("the archive's manifest is unreadable")
                manifest = json.loads(f.read())
                if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
                    raise DamagedArchive(f"unknown backup format: {manifest!r}")
                continue
            target = _member_path(staging, member)
            mode = (member.mode & 0o755) | 0o700
            if member.isdir():
                target.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.chmod(target, mode)
            elif member.isfile():
                target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                src = tar.extractfile(member)
                if src is None:  # pragma: no cover - a regular member has data
                    raise DamagedArchive(f"no data for {member.name!r}")
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, member.mode & 0o644)
                with os.fdopen(fd, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                    dst.flush()
                    os.fsync(dst.fileno())
            else:
                raise DamagedArchive(f"the archive holds a link or device: {member.name!r}")
    reader.finish()
    if manifest is None:
        raise DamagedArchive("the archive is empty")
    return manifest


def restore(archive: Path, data_dir: Path, passphrase: str) -> dict[str, object]:
    """Bring ``archive`` back as ``data_dir`` (absent or empty); returns its manifest."""
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupError(f"{data_dir} is not empty: restore into a new data directory")
    parent = data_dir.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{data_dir.name}.restore-", dir=parent))
    try:
        with open(archive, "rb") as src:
            manifest = _extract(ArchiveReader(src, passphrase.encode()), staging)
        if not (staging / _ROOT_SECRET).is_file():
            raise DamagedArchive(f"the archive holds no {_ROOT_SECRET}")
        os.chmod(staging, 0o700)
        os.rename(staging, data_dir)  # a directory: an empty target is replaced (POSIX)
    except (ArchiveError, tarfile.TarError, json.JSONDecodeError) as e:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(e, ArchiveError):
            raise
        raise DamagedArchive(f"the archive's contents are damaged: {e}") from e
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest

