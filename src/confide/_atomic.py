"""The one way confide replaces a file: atomically, durably, private by default.

Every file confide writes whole (keys, sealed secrets, certificates, trust files,
collateral caches, the CLI's session, ``confide encrypt``/``decrypt`` outputs)
goes through :func:`atomic_writer`:

1. a new temporary file is created next to the target (same directory, so the
   rename cannot cross file systems) with ``O_EXCL`` and mode 0600 from the start
   (never readable by others, whatever the umask, not even for an instant);
2. the data is written, flushed and ``fsync``-ed;
3. the temporary file is renamed over the target (``os.replace``: readers see
   the old file or the new one, never a partial one);
4. the directory is ``fsync``-ed so the rename itself survives a crash.

If anything fails before the rename, the temporary file is removed and the
target is left as it was. Files meant to be public (mode 0644) say so with
``mode=PUBLIC_MODE``; the mode is set on the file descriptor, not through the
umask.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["PRIVATE_MODE", "PUBLIC_MODE", "atomic_writer", "write_atomic"]

#: Owner read/write only: every secret and anything not meant for others.
PRIVATE_MODE = 0o600
#: World-readable: trust files and certificates clients are meant to copy.
PUBLIC_MODE = 0o644


@contextlib.contextmanager
def atomic_writer(path: Path, *, mode: int = PRIVATE_MODE) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``path`` when the block ends without error.

    Raises:
        OSError: the directory does not exist or a write, sync or rename failed
            (``path`` is then unchanged and no temporary file is left).
    """
    directory = path.parent
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if mode != PRIVATE_MODE:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def write_atomic(path: Path, data: bytes, *, mode: int = PRIVATE_MODE) -> None:
    """Replace ``path`` with ``data`` through :func:`atomic_writer` (mode 0600 by default)."""
    with atomic_writer(path, mode=mode) as f:
        f.write(data)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as e:
        # A few file systems cannot sync a directory; the rename is then as
        # durable as that file system makes it.
        if e.errno != errno.EINVAL:
            raise
    finally:
        os.close(fd)
