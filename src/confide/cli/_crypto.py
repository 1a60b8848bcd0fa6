"""``confide encrypt`` / ``confide decrypt``: teaclave_cli's file commands, streamed.

Accepts teaclave_cli's options (``-a/--algorithm``, ``-k/--key`` hex, ``--iv``
hex, ``-i/--input-file``, ``-o/--output-file``) plus ``-c/--print-cmac`` (print
the cmac in hex) and, for decrypt, ``--expected-cmac``. A key on the command
line is visible to other users (``ps``) and in shell history, so ``-k`` warns;
``--key-file FILE`` and ``--key-stdin`` read it instead. The output is written to
a private temporary file next to the destination and renamed only on success
(``confide._atomic``), so a failed decryption never leaves plaintext behind.
For teaclave-file-128 the embedded name is the output's base name (encrypt) and
must equal the input's base name (decrypt), as in Teaclave.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from .._atomic import atomic_writer
from ..crypto import DEFAULT_SCHEMA, CryptoError, decrypt_stream, encrypt_stream

__all__ = ["PROGRESS_THRESHOLD_BYTES", "decrypt", "encrypt"]

#: Inputs at least this large get a progress bar on stderr.
PROGRESS_THRESHOLD_BYTES = 64 * 1024 * 1024

_Algorithm = Annotated[
    str,
    typer.Option(
        "-a",
        "--algorithm",
        help="aes-gcm-128, aes-gcm-256, teaclave-file-128 or confide-stream-256.",
    ),
]
_Key = Annotated[str | None, typer.Option(
    "-k", "--key", help="Key in hex (teaclave_cli's option; visible in `ps`: prefer --key-file).")]
_KeyFile = Annotated[Path | None, typer.Option("--key-file", help="File holding the key "
                                                                  "(hex or raw bytes).")]
_KeyStdin = Annotated[bool, typer.Option("--key-stdin", help="Read the key from standard input.")]
_Iv = Annotated[str, typer.Option("--iv", help="IV in hex (aes-gcm only).")]
_Input = Annotated[Path, typer.Option("-i", "--input-file", help="Path of the input file.")]
_Output = Annotated[Path, typer.Option("-o", "--output-file", help="Path of the output file.")]
_PrintCmac = Annotated[
    bool, typer.Option("-c", "--print-cmac", help="Print the file's cmac in hex.")
]


def encrypt(
    input_file: _Input,
    output_file: _Output,
    key: _Key = None,
    key_file: _KeyFile = None,
    key_stdin: _KeyStdin = False,
    algorithm: _Algorithm = DEFAULT_SCHEMA,
    iv: _Iv = "",
    print_cmac: _PrintCmac = False,
) -> None:
    """Encrypt INPUT_FILE into OUTPUT_FILE."""
    key_bytes, iv_bytes = _key(key, key_file, key_stdin), _hex(iv, "--iv")
    if algorithm.startswith("aes-gcm"):
        _err().print(
            "[yellow]warning:[/] aes-gcm reuses the key and IV for every file: never encrypt "
            "different data under the same key and IV; prefer confide-stream-256.",
        )

    def run(src: BinaryIO, dst: BinaryIO, progress: Callable[[int], None] | None) -> bytes:
        return encrypt_stream(
            algorithm, key_bytes, iv_bytes, src, dst,
            file_name=output_file.name, progress=progress,
        )  # fmt: skip

    cmac = _transform(input_file, output_file, run)
    if print_cmac:
        typer.echo(cmac.hex())


def decrypt(
    input_file: _Input,
    output_file: _Output,
    key: _Key = None,
    key_file: _KeyFile = None,
    key_stdin: _KeyStdin = False,
    algorithm: _Algorithm = DEFAULT_SCHEMA,
    iv: _Iv = "",
    print_cmac: _PrintCmac = False,
    expected_cmac: Annotated[
        str, typer.Option("--expected-cmac", help="Registered cmac in hex; refuse any other file.")
    ] = "",
) -> None:
    """Verify and decrypt INPUT_FILE into OUTPUT_FILE."""
    key_bytes, iv_bytes = _key(key, key_file, key_stdin), _hex(iv, "--iv")
    expected = _hex(expected_cmac, "--expected-cmac") if expected_cmac else None

    def run(src: BinaryIO, dst: BinaryIO, progress: Callable[[int], None] | None) -> bytes:
        return decrypt_stream(
            algorithm, key_bytes, iv_bytes, src, dst,
            expected_cmac=expected, file_name=input_file.name, progress=progress,
        )  # fmt: skip

    cmac = _transform(input_file, output_file, run)
    if print_cmac:
        typer.echo(cmac.hex())


def _transform(
    input_file: Path,
    output_file: Path,
    run: Callable[[BinaryIO, BinaryIO, Callable[[int], None] | None], bytes],
) -> bytes:
    try:
        with open(input_file, "rb") as src, atomic_writer(output_file) as dst:
            size = os.fstat(src.fileno()).st_size
            with _progress(size, input_file.name) as advance:
                return run(src, dst, advance)
    except CryptoError as e:
        _err().print(f"[red]error:[/] {e}", markup=True, highlight=False)
        raise typer.Exit(1) from e
    except OSError as e:
        _err().print(f"[red]error:[/] {e}", markup=True, highlight=False)
        raise typer.Exit(1) from e


@contextlib.contextmanager
def _progress(size: int, label: str) -> Iterator[Callable[[int], None] | None]:
    if size < PROGRESS_THRESHOLD_BYTES:
        yield None
        return
    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=_err(), transient=True) as bar:
        task = bar.add_task(label, total=size)
        yield lambda n: bar.advance(task, n)


def _err() -> Console:
    return Console(stderr=True)


def _key(key: str | None, key_file: Path | None, key_stdin: bool) -> bytes:
    """The key from exactly one of -k (warned about), --key-file, --key-stdin or a prompt."""
    from ._input import UsageError, read_key

    if key is not None:
        if key_file is not None or key_stdin:
            raise typer.BadParameter("give one of -k, --key-file, --key-stdin", param_hint="-k")
        _err().print("[yellow]warning:[/] -k puts the key on the command line (visible in "
                     "`ps` and shell history); prefer --key-file FILE or --key-stdin")
        return _hex(key, "--key")
    try:
        return read_key(key_file, key_stdin) or b""
    except UsageError as e:
        raise typer.BadParameter(str(e), param_hint="--key-file") from e


def _hex(value: str, option: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError as e:
        raise typer.BadParameter(f"{option} is not valid hex") from e
