"""``confide audit …``: search the audit log (client) and check its hash chain (operator)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ._common import DataDir, console, err, run, session_client

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="The audit log.")


@app.command("query")
def query(query: str, limit: int = 50) -> None:
    """Search the audit log (PlatformAdmin)."""
    def go() -> None:
        table = Table("time (µs)", "user", "message", "ok")
        for e in session_client().query_audit_logs(query, limit):
            table.add_row(str(e.microsecond), e.user, e.message, "yes" if e.result else "no")
        console.print(table)
    run(go)


@app.command("verify")
def verify(data_dir: DataDir = Path("confide-data"),
           database_url: Annotated[str | None, typer.Option(
               envvar="CONFIDE_DATABASE_URL")] = None) -> None:
    """Check the audit log's hash chain (run where the platform secret is)."""
    from ..crypto.records import RecordSealer
    from ..node import ConfigError, open_root_secret
    from ..services.audit import AuditChainBroken, AuditLog
    from ..storage import Database

    try:
        secret = open_root_secret(data_dir, create=False)
    except ConfigError as e:
        err.print(f"[red]{e}[/]")
        raise typer.Exit(2) from e
    db = Database(database_url or f"sqlite:///{data_dir / 'confide.db'}",
                  RecordSealer(secret.derive("record-seal", 32)))
    try:
        count = AuditLog(db, secret.derive("audit-chain", 32), clock=lambda: 0.0).verify_chain()
    except AuditChainBroken as e:
        err.print(f"[red]audit log does NOT verify:[/] {e}")
        raise typer.Exit(1) from e
    console.print(f"[green]audit log verifies:[/] {count} entries")
