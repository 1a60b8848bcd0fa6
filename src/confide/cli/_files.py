"""``confide file …``: the data path -- encrypt and upload, download and decrypt, register.

``upload`` encrypts a file here while it streams the ciphertext to the server's
blob store (or to your own URL), registers it as an input and keeps its key in
the profile (``_keystore``); ``new-output`` registers a fresh output location
the same way; ``download`` fetches an output (or input), verifies its cmac and
decrypts it into a file. Memory stays bounded whatever the file size. Keys are
read from a file or standard input, never from the command line.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from . import _exit
from ._common import Json, emit, err, fail, run, session_client
from ._input import UsageError, parse_hex, read_key
from ._keystore import LocalFile, load_file, local_files, save_file

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Data files: upload, download, register.")

Schema = Annotated[str, typer.Option(
    help="confide-stream-256 (default), aes-gcm-128, aes-gcm-256, teaclave-file-128 or raw.")]
KeyFile = Annotated[Path | None, typer.Option(
    help="File holding the key (hex or raw bytes).")]
KeyStdin = Annotated[bool, typer.Option(help="Read the key from standard input.")]
ShowProgress = Annotated[bool | None, typer.Option(
    "--progress/--no-progress", help="Progress bar on stderr (default: on a terminal).")]


@contextlib.contextmanager
def _progress(total: int | None, label: str, show: bool | None, json_out: bool
              ) -> Iterator[Callable[[int], None] | None]:
    if show is False or json_out or (show is None and not sys.stderr.isatty()):
        yield None
        return
    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _default_schema(schema: str | None) -> str:
    from ..crypto import DEFAULT_SCHEMA

    return schema or DEFAULT_SCHEMA


@app.command("upload")
def upload(
    file: Annotated[Path, typer.Argument(help="The plaintext file to encrypt and upload.")],
    name: Annotated[str | None, typer.Option(
        help="Name of the stored object (default: the file's name).")] = None,
    schema: Schema = "",
    key_file: KeyFile = None,
    key_stdin: KeyStdin = False,
    url: Annotated[str | None, typer.Option(
        help="Your own URL workers fetch the ciphertext from (instead of the blob store).")
    ] = None,
    put: Annotated[bool, typer.Option(
        help="With --url: PUT the ciphertext there (e.g. a presigned upload URL).")] = False,
    put_url: Annotated[str | None, typer.Option(
        help="With --url: PUT the ciphertext to this URL instead (e.g. presigned S3 PUT).")
    ] = None,
    ciphertext_out: Annotated[Path | None, typer.Option(
        help="With --url: write the ciphertext here, for you to host at --url.")] = None,
    progress: ShowProgress = None,
    json_out: Json = False,
) -> None:
    """Encrypt FILE here, upload the ciphertext, register it as your input; prints its id.

    The key is fresh (or --key-file/--key-stdin) and stays in the profile.
    """
    def go() -> None:
        chosen = _default_schema(schema)
        key = read_key(key_file, key_stdin, required=False)
        if not file.is_file():
            raise UsageError(f"{file}: no such file")
        own = [x for x in (put, put_url, ciphertext_out) if x]
        if url is None and own:
            raise UsageError("--put, --put-url and --ciphertext-out go with --url")
        if url is not None and len(own) != 1:
            raise UsageError("with --url give one of --put, --put-url URL or --ciphertext-out "
                             "FILE (how the ciphertext gets there)")
        object_name = name or file.name
        client = session_client()
        size = file.stat().st_size
        with _progress(size, f"upload {object_name}", progress, json_out) as advance:
            if url is not None and ciphertext_out is not None:
                upload_ = _encrypt_to(file, ciphertext_out, chosen, key, object_name, url)
            else:
                upload_ = client.upload_file(
                    file, file_name=object_name, schema=chosen, key=key, progress=advance,
                    put_url=(put_url or url) if url is not None else None, get_url=url)
        data_id = client.register_upload(upload_)
        save_file(LocalFile(data_id, "input", object_name, upload_.url, upload_.url,
                            upload_.schema, upload_.key.hex(), upload_.iv.hex(),
                            upload_.cmac.hex(), size))
        emit({"data_id": data_id, "url": upload_.url, "schema": upload_.schema,
              "cmac": upload_.cmac.hex(), "size": size}, json_out, data_id)
        if ciphertext_out is not None and not json_out:
            err.print(f"host {ciphertext_out} at {url} before the task runs", markup=False)
    run(go)


def _encrypt_to(src: Path, dst: Path, schema: str, key: bytes | None, name: str,
                url: str) -> Any:
    from .._atomic import atomic_writer
    from ..client import EncryptedFile
    from ..crypto import CryptoError, encrypt_stream

    real_key = key if key is not None else os.urandom(16 if schema in (
        "aes-gcm-128", "teaclave-file-128") else 32)
    iv = os.urandom(12) if schema.startswith("aes-gcm") else b""
    try:
        with open(src, "rb") as f, atomic_writer(dst) as out:
            cmac = encrypt_stream(schema, real_key, iv, f, out, file_name=name)
    except CryptoError as e:
        raise UsageError(f"cannot encrypt: {e}") from e
    return EncryptedFile(url, schema, real_key, iv, cmac, src.stat().st_size)


@app.command("new-output")
def new_output(
    name: Annotated[str, typer.Option(help="Name of the stored object.")] = "result",
    schema: Schema = "",
    json_out: Json = False,
) -> None:
    """Register a fresh output on the blob store with a new key; prints its id."""
    def go() -> None:
        out = session_client().new_output(file_name=name, schema=_default_schema(schema))
        save_file(LocalFile(out.data_id, "output", name, "", out.get_url, out.schema,
                            out.key.hex(), out.iv.hex()))
        emit({"data_id": out.data_id, "schema": out.schema}, json_out, out.data_id)
    run(go)


@app.command("download")
def download(
    data_id: Annotated[str | None, typer.Argument(
        help="An output (or input) this profile registered; omit with --url.")] = None,
    output_file: Annotated[Path, typer.Option("-o", "--output-file",
                                              help="Where the plaintext goes.")] = Path(""),
    cmac: Annotated[str | None, typer.Option(
        help="Expected cmac in hex (default: the one the server recorded).")] = None,
    url: Annotated[str | None, typer.Option(help="Fetch this URL instead (your own file).")
                   ] = None,
    schema: Schema = "",
    key_file: KeyFile = None,
    key_stdin: KeyStdin = False,
    iv: Annotated[str, typer.Option(help="IV in hex (aes-gcm only).")] = "",
    progress: ShowProgress = None,
    json_out: Json = False,
) -> None:
    """Fetch a file, verify its cmac and decrypt it into -o FILE (bounded memory)."""
    def go() -> None:
        if not str(output_file):
            raise UsageError("give -o/--output-file")
        client = session_client()
        if url is not None:
            if data_id is not None:
                raise UsageError("give DATA_ID or --url, not both")
            if cmac is None:
                raise UsageError("with --url give --cmac (the registered one)")
            key = read_key(key_file, key_stdin) or b""
            source = (url, _default_schema(schema), key, parse_hex(iv, "--iv"),
                      parse_hex(cmac, "--cmac", length=16))
        elif data_id is None:
            raise UsageError("give DATA_ID (a file of this profile) or --url")
        else:
            entry = load_file(data_id)
            expected = parse_hex(cmac, "--cmac", length=16) if cmac else _recorded_cmac(
                client, entry)
            source = (entry.get_url, entry.schema, bytes.fromhex(entry.key),
                      bytes.fromhex(entry.iv), expected)
        get_url, scheme, key_bytes, iv_bytes, expected_cmac = source
        with _progress(None, f"download {output_file.name}", progress, json_out) as advance:
            got = client.download_url_to(get_url, output_file, schema=scheme, key=key_bytes,
                                         iv=iv_bytes, cmac=expected_cmac, progress=advance)
        emit({"path": str(output_file), "cmac": got.hex(),
              "bytes": output_file.stat().st_size}, json_out,
             f"verified and decrypted to {output_file}")
    run(go)


def _recorded_cmac(client: Any, entry: LocalFile) -> bytes:
    if entry.kind == "input":
        return bytes.fromhex(entry.cmac)
    _owners, recorded = client.get_output_file(entry.data_id)
    if not recorded:
        raise fail(f"{entry.data_id} has not been written yet (its task has not finished "
                   "successfully)", _exit.REFUSED)
    return bytes(recorded)


@app.command("register-input")
def register_input(
    url: str,
    cmac: Annotated[str, typer.Option(help="The ciphertext's cmac in hex.")],
    schema: Schema = "",
    key_file: KeyFile = None,
    key_stdin: KeyStdin = False,
    iv: Annotated[str, typer.Option(help="IV in hex (aes-gcm only).")] = "",
    size: Annotated[int | None, typer.Option(
        help="Plaintext bytes: lets the server refuse an input over a cap at assign time.")
    ] = None,
    json_out: Json = False,
) -> None:
    """Register a file you host and encrypted yourself as an input; prints its id."""
    def go() -> None:
        key = read_key(key_file, key_stdin) or b""
        data_id = session_client().register_input_file(
            url, schema=_default_schema(schema), key=key, iv=parse_hex(iv, "--iv"),
            cmac=parse_hex(cmac, "--cmac"), plaintext_size=size)
        emit({"data_id": data_id}, json_out, data_id)
    run(go)


@app.command("register-output")
def register_output(
    url: str,
    schema: Schema = "",
    key_file: KeyFile = None,
    key_stdin: KeyStdin = False,
    iv: Annotated[str, typer.Option(help="IV in hex (aes-gcm only).")] = "",
    json_out: Json = False,
) -> None:
    """Register a location you host (and its key) as an output; prints its id."""
    def go() -> None:
        key = read_key(key_file, key_stdin) or b""
        data_id = session_client().register_output_file(
            url, schema=_default_schema(schema), key=key, iv=parse_hex(iv, "--iv"))
        emit({"data_id": data_id}, json_out, data_id)
    run(go)


@app.command("info")
def info(data_id: str, json_out: Json = False) -> None:
    """A file's owners and cmac (inputs and outputs you own)."""
    def go() -> None:
        client = session_client()
        get = client.get_output_file if data_id.startswith("output-") else client.get_input_file
        owners, cmac = get(data_id)
        emit({"data_id": data_id, "owners": owners, "cmac": cmac.hex()}, json_out,
             f"owners: {', '.join(owners)}\ncmac: {cmac.hex() or '(not written yet)'}")
    run(go)


@app.command("from-output")
def from_output(output_id: str, json_out: Json = False) -> None:
    """Register a written output as an input (for a later task); prints its id."""
    def go() -> None:
        data_id = session_client().register_input_from_output(output_id)
        emit({"data_id": data_id}, json_out, data_id)
    run(go)


@app.command("fusion-output")
def fusion_output(owners: Annotated[list[str], typer.Argument(help="Two or more user ids.")],
                  json_out: Json = False) -> None:
    """Register an output owned jointly (you among the owners); prints its id."""
    def go() -> None:
        data_id = session_client().register_fusion_output(owners)
        emit({"data_id": data_id}, json_out, data_id)
    run(go)


@app.command("blob-urls")
def blob_urls(name: str, ttl: Annotated[int, typer.Option(help="Seconds; 0: default.")] = 0,
              json_out: Json = False) -> None:
    """Presigned PUT/GET URLs for a new object on the server's blob store."""
    def go() -> None:
        u = session_client().blob_urls(name, ttl)
        data = {"object_name": u.object_name, "put_url": u.put_url, "get_url": u.get_url,
                "rw_url": u.rw_url, "expires_at": u.expires_at}
        emit(data, json_out, "\n".join(f"{k}: {v}" for k, v in data.items()))
    run(go)


@app.command("keys")
def keys(json_out: Json = False) -> None:
    """Files whose keys this profile keeps (no key material is printed)."""
    entries = local_files()
    rows = [{"data_id": e.data_id, "kind": e.kind, "name": e.name, "schema": e.schema}
            for e in entries]
    emit(rows, json_out, "\n".join(f"{r['data_id']}\t{r['kind']}\t{r['name']}" for r in rows)
         or None)
