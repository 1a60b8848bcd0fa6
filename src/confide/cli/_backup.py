"""``confide backup`` and ``confide restore``: the data directory in one encrypted archive.

The passphrase comes from ``--passphrase-file``, ``--passphrase-stdin`` or a
hidden prompt, never from the command line (docs/cli.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from . import _exit
from ._common import DataDir, Json, emit, fail
from ._input import UsageError, read_secret_line

__all__ = ["backup", "restore"]

PassphraseFile = Annotated[Path | None, typer.Option(
    "--passphrase-file", help="Read the passphrase from this file (its first line).")]
PassphraseStdin = Annotated[bool, typer.Option(
    "--passphrase-stdin", help="Read the passphrase from the first line of standard input.")]


def _passphrase(path: Path | None, stdin: bool, *, confirm: bool) -> str:
    if path is not None and stdin:
        raise fail("error: give --passphrase-file or --passphrase-stdin, not both", _exit.USAGE)
    try:
        if stdin:
            return read_secret_line("--passphrase-stdin")
        if path is not None:
            lines = path.read_text().splitlines()
            if not lines or not lines[0]:
                raise fail(f"error: {path}: no passphrase on its first line", _exit.USAGE)
            return lines[0]
    except (OSError, UnicodeDecodeError) as e:
        raise fail(f"error: cannot read the passphrase: {e}", _exit.USAGE) from e
    except UsageError as e:
        raise fail(f"error: {e}", _exit.USAGE) from e
    return str(typer.prompt("Backup passphrase", hide_input=True, confirmation_prompt=confirm))


def backup(output: Annotated[Path, typer.Option("--output", "-o",
                                                help="The archive to write (new file).")],
           data_dir: DataDir = Path("confide-data"),
           passphrase_file: PassphraseFile = None, passphrase_stdin: PassphraseStdin = False,
           json_out: Json = False) -> None:
    """Write the data directory, with a consistent snapshot of its SQLite database, to an
    encrypted archive (safe while the server runs). PostgreSQL: also run pg_dump."""
    from ..node._backup import BackupError
    from ..node._backup import backup as run_backup

    passphrase = _passphrase(passphrase_file, passphrase_stdin, confirm=True)
    try:
        summary = run_backup(data_dir, output, passphrase)
    except BackupError as e:
        raise fail(f"error: {e}", _exit.USAGE) from e
    except OSError as e:
        raise fail(f"error: backup failed: {e}", _exit.SERVER) from e
    note = ("" if summary.database == "sqlite" else
            "\nnote: no SQLite database in the data directory: back up PostgreSQL with pg_dump")
    emit({"output": str(output), "files": summary.files, "bytes": summary.bytes,
          "database": summary.database}, json_out,
         f"backed up {summary.files} files ({summary.bytes} bytes) to {output}{note}")


def restore(input_: Annotated[Path, typer.Option("--input", "-i", help="The archive to read.")],
            data_dir: DataDir = Path("confide-data"),
            passphrase_file: PassphraseFile = None, passphrase_stdin: PassphraseStdin = False,
            json_out: Json = False) -> None:
    """Bring an archive back as a new (absent or empty) data directory; nothing is written
    unless the whole archive authenticates."""
    from ..node._archive import ArchiveError
    from ..node._backup import BackupError
    from ..node._backup import restore as run_restore

    if not input_.is_file():
        raise fail(f"error: no archive at {input_}", _exit.DENIED)
    passphrase = _passphrase(passphrase_file, passphrase_stdin, confirm=False)
    try:
        manifest = run_restore(input_, data_dir, passphrase)
    except BackupError as e:
        raise fail(f"error: {e}", _exit.USAGE) from e
    except ArchiveError as e:
        raise fail(f"error: {e}; nothing was restored", _exit.SERVER) from e
    except OSError as e:
        raise fail(f"error: restore failed: {e}; nothing was restored", _exit.SERVER) from e
    note = ("" if manifest.get("database") == "sqlite" else
            "\nnote: the archive holds no database: restore PostgreSQL from its pg_dump")
    emit({"data_dir": str(data_dir), **manifest}, json_out,
         f"restored {input_} (made {manifest.get('created')} by confide "
         f"{manifest.get('confide')}) into {data_dir}{note}")
