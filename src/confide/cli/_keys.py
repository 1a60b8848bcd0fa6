"""``confide keys …``: the platform's long-lived keys (show, rotate, reseal).

Run where the platform secret is (the data directory), like ``confide audit
verify``; with PostgreSQL give ``--database-url``. Safe while the server runs:
the keyring is changed by compare-and-swap in the database, and the running
server picks a rotation up within ``[keys] check_interval_s`` (or at once when
it meets data under the new key). See docs/operations.md, "Key rotation".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from . import _exit
from ._common import DataDir, Json, emit, fail

if TYPE_CHECKING:
    from ..node import PlatformKeys

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="The platform's keys: show, rotate, reseal.")

DatabaseUrl = Annotated[str | None, typer.Option(
    "--database-url", envvar="CONFIDE_DATABASE_URL",
    help="PostgreSQL URL (default: the SQLite database in --data-dir).")]
_ACTOR = "operator (confide keys)"


@contextmanager
def _open(data_dir: Path, database_url: str | None) -> Iterator[PlatformKeys]:
    from ..keys import KeysError
    from ..node import ConfigError, open_platform_keys, open_root_secret
    from ..storage import StorageError

    if database_url is None and not (data_dir / "confide.db").is_file():
        raise fail(f"error: no database at {data_dir / 'confide.db'}", _exit.DENIED)
    try:
        secret = open_root_secret(data_dir, create=False)
    except ConfigError as e:
        raise fail(f"error: {e}", _exit.DENIED) from e
    except KeysError as e:
        raise fail(f"error: cannot unseal the platform secret: {e}", _exit.DENIED) from e
    try:
        keys = open_platform_keys(secret, database_url or f"sqlite:///{data_dir / 'confide.db'}")
    except KeysError as e:
        raise fail(f"error: cannot open the keyring: {e}", _exit.SERVER) from e
    except StorageError as e:
        raise fail(f"error: {e}", _exit.SERVER) from e
    try:
        yield keys
    except KeysError as e:
        raise fail(f"error: {e}", _exit.USAGE if e.reason in ("unknown-kind", "bad-batch")
                   else _exit.SERVER) from e
    except StorageError as e:
        raise fail(f"error: {e}", _exit.SERVER) from e
    finally:
        keys.close()


def _when(created: object) -> str | None:
    if not isinstance(created, int):
        return None
    return dt.datetime.fromtimestamp(created, dt.UTC).isoformat(timespec="seconds")


@app.command("show")
def show(data_dir: DataDir = Path("confide-data"), database_url: DatabaseUrl = None,
         json_out: Json = False) -> None:
    """List every key id (kid), when it was created and which is active; never key bytes."""
    with _open(data_dir, database_url) as keys:
        status = keys.rotation.status()
    kinds: dict[str, list[dict[str, Any]]] = status["kinds"]  # type: ignore[assignment]
    for versions in kinds.values():
        for v in versions:
            v["created"] = _when(v["created"])
    lines = []
    for versions in kinds.values():
        for v in versions:
            rows = f"\t{v['rows']} rows" if "rows" in v else ""
            origin = "derived from the root secret" if v["derived"] else "random"
            lines.append(f"{v['kid']}\t{'active' if v['active'] else 'old'}\t"
                         f"{v['created'] or '-'}\t{origin}{rows}")
    unreadable = status["unreadable_rows"]
    if unreadable:
        lines.append(f"warning: {unreadable} rows have no readable key header")
    emit({"kinds": kinds, "since": _when(status["since"]), "unreadable_rows": unreadable},
         json_out, "\n".join(lines))


Kinds = Annotated[list[str] | None, typer.Option(
    "--key", "-k", help="Kind to rotate: record, audit, presign or token. Repeatable; "
                        "default: every kind.")]


@app.command("rotate")
def rotate(key: Kinds = None, data_dir: DataDir = Path("confide-data"),
           database_url: DatabaseUrl = None, json_out: Json = False) -> None:
    """Make a new active key of each kind given; older keys keep data readable (audited)."""
    from ..keys import KEY_KINDS

    kinds = list(key) if key else list(KEY_KINDS)
    unknown = [k for k in kinds if k not in KEY_KINDS]
    if unknown:
        raise fail(f"error: unknown key kind {unknown[0]!r} (one of {', '.join(KEY_KINDS)})",
                   _exit.USAGE)
    with _open(data_dir, database_url) as keys:
        made = keys.rotation.rotate(kinds, actor=_ACTOR)
    emit({"rotated": [{"kid": v.kid, "created": _when(v.created)} for v in made]}, json_out,
         "\n".join(f"rotated: {v.kid} is now the active {v.kind} key" for v in made)
         + ("\nrecord rows keep their key until `confide keys reseal`"
            if "record" in kinds else ""))


@app.command("reseal")
def reseal(batch: Annotated[int, typer.Option(
               help="Rows per transaction (1..10000).")] = 500,
           data_dir: DataDir = Path("confide-data"), database_url: DatabaseUrl = None,
           json_out: Json = False) -> None:
    """Rewrite rows sealed by an older record key under the active one (online, in
    batches; run again to finish if interrupted; audited)."""
    with _open(data_dir, database_url) as keys:
        report = keys.rotation.reseal(actor=_ACTOR, batch=batch)
    emit({"kid": report.kid, "resealed": report.resealed, "tables": report.tables}, json_out,
         f"resealed {report.resealed} rows: every row is under {report.kid}")
