"""``confide audit …``: search the audit log (client) and check its hash chain (operator)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from . import _exit
from ._common import DataDir, Json, emit, fail, run, session_client

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="The audit log.")


@app.command("query")
def query(query: str, limit: int = 50, json_out: Json = False) -> None:
    """Search the audit log (PlatformAdmin), newest first."""
    def go() -> None:
        entries = session_client().query_audit_logs(query, limit)
        rows = [{"microsecond": e.microsecond, "user": e.user, "message": e.message,
                 "ok": e.result, "ip": e.ip.hex()} for e in entries]
        emit(rows, json_out, "\n".join(
            f"{r['microsecond']}\t{r['user'] or '-'}\t{r['message']}\t"
            f"{'ok' if r['ok'] else 'denied'}" for r in rows) or None)
    run(go)


@app.command("verify")
def verify(data_dir: DataDir = Path("confide-data"),
           database_url: Annotated[str | None, typer.Option(
               envvar="CONFIDE_DATABASE_URL")] = None,
           json_out: Json = False) -> None:
    """Check the audit log's hash chain (run where the platform secret is)."""
    from ..keys import KeysError
    from ..node import ConfigError, open_platform_keys, open_root_secret
    from ..services.audit import AuditChainBroken
    from ..storage import StorageError

    try:
        secret = open_root_secret(data_dir, create=False)
    except ConfigError as e:
        raise fail(f"error: {e}", _exit.DENIED) from e
    try:
        keys = open_platform_keys(secret, database_url or
                                  f"sqlite:///{data_dir / 'confide.db'}", clock=lambda: 0.0)
    except (KeysError, StorageError) as e:
        raise fail(f"error: {e}", _exit.SERVER) from e
    try:
        count = keys.audit.verify_chain()
    except (AuditChainBroken, StorageError) as e:
        emit({"verified": False, "error": str(e)}, json_out)
        raise fail(f"audit log does NOT verify: {e}", _exit.SERVER) from e
    finally:
        keys.close()
    emit({"verified": True, "entries": count}, json_out, f"audit log verifies: {count} entries")
