"""``confide node …``: the operator's list of revoked nodes (run where the platform secret is)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from . import _exit
from ._common import DataDir, Json, emit, fail

if TYPE_CHECKING:
    from ..services.keys import NodeRevocations

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Nodes of a distributed platform (revocation).")

DatabaseUrl = Annotated[str | None, typer.Option(
    envvar="CONFIDE_DATABASE_URL", help="SQLAlchemy URL; default SQLite in the data dir.")]


def _revocations(data_dir: Path, database_url: str | None) -> NodeRevocations:
    from ..crypto.records import RecordSealer
    from ..node import ConfigError, open_root_secret
    from ..services.keys import NodeRevocations
    from ..storage import Database

    try:
        secret = open_root_secret(data_dir, create=False)
    except ConfigError as e:
        raise fail(f"error: {e}", _exit.DENIED) from e
    db = Database(database_url or f"sqlite:///{data_dir / 'confide.db'}",
                  RecordSealer(secret.derive("record-seal", 32)))
    return NodeRevocations(db, ttl_s=0.0)


def _when(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds")


@app.command("revoke")
def revoke(node_id: Annotated[str, typer.Argument(
               help="The node id (a worker host's --name revokes all its workers).")],
           reason: Annotated[str, typer.Option(help="Why (kept with the entry).")] = "",
           data_dir: DataDir = Path("confide-data"), database_url: DatabaseUrl = None,
           json_out: Json = False) -> None:
    """Revoke a node: it may no longer enrol, and its internal calls are refused."""
    from ..services.keys import RevocationError

    revocations = _revocations(data_dir, database_url)
    try:
        entry = revocations.revoke(node_id, reason)
    except RevocationError as e:
        raise fail(f"error: {e}", _exit.USAGE) from e
    emit({"node_id": entry.node_id, "reason": entry.reason,
          "revoked_at": _when(entry.revoked_at)}, json_out,
         f"revoked {entry.node_id} (and every {entry.node_id}/…) since "
         f"{_when(entry.revoked_at)}")


@app.command("revoked")
def revoked(data_dir: DataDir = Path("confide-data"), database_url: DatabaseUrl = None,
            json_out: Json = False) -> None:
    """List the revoked nodes."""
    rows = [{"node_id": e.node_id, "reason": e.reason, "revoked_at": _when(e.revoked_at)}
            for e in sorted(_revocations(data_dir, database_url).all().values(),
                            key=lambda e: e.revoked_at)]
    emit(rows, json_out, "\n".join(f"{r['node_id']}\t{r['revoked_at']}\t{r['reason']}"
                                   for r in rows) or "no node is revoked")
