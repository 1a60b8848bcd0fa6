"""The sim measurement: a reproducible hash of the installed ``confide`` code.

Exactly what is hashed: every regular file below the ``confide`` package
directory, skipping any ``__pycache__`` directory and ``*.pyc``/``*.pyo`` files
and not following symlinks, in order of its POSIX path relative to the package
directory (sorted as Python sorts ``str``). For each file the hash absorbs::

    relative_path (UTF-8) || 0x00 || len(content) as 8-byte big-endian || content

MRENCLAVE (sgx) is the SHA-256 of that stream, MRTD (tdx) its SHA-384. Any
change to any shipped file changes the measurement.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["code_files", "package_dir", "package_measurement"]


def package_dir() -> Path:
    """The directory of the installed ``confide`` package."""
    return Path(__file__).resolve().parents[2]


def code_files(root: Path) -> list[tuple[str, Path]]:
    """The files that are hashed, as (relative POSIX path, path), sorted."""
    out = []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if "__pycache__" in rel.parts or p.suffix in (".pyc", ".pyo"):
            continue
        if p.is_symlink() or not p.is_file():
            continue
        out.append((rel.as_posix(), p))
    return sorted(out)


def package_measurement(algorithm: str, root: Path | None = None) -> bytes:
    """Hash the package source as described in the module docstring.

    Args:
        algorithm: ``"sha256"`` (MRENCLAVE) or ``"sha384"`` (MRTD).
        root: package directory; defaults to the installed ``confide``.
    """
    h = hashlib.new(algorithm)
    for rel, path in code_files(root or package_dir()):
        data = path.read_bytes()
        h.update(rel.encode() + b"\x00" + len(data).to_bytes(8, "big") + data)
    return h.digest()
