"""``confide audit …``: a participant's verified entries (``audit``, ``audit verify``),
the administrator's search (``audit query``) and the operator's chain check
(``audit verify --data-dir``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from . import _exit
from ._common import Json, console, emit, fail, run, session_client

if TYPE_CHECKING:
    from ..client import ParticipantAudit

__all__ = ["app"]

app = typer.Typer(help="The audit log: the entries you may see, verified; the admin's search; "
                       "the operator's chain check.")

TaskFilter = Annotated[str | None, typer.Option("--task", help="Only entries naming this task.")]
Limit = Annotated[int, typer.Option("--limit", min=1, help="At most this many, newest first.")]


def _fetch(task: str | None, limit: int) -> ParticipantAudit:
    """The entries, proven to extend the tree head the profile's last audit verified."""
    from ._session import Session

    client = session_client()
    session = Session.load()
    if session is not None and session.audit_tree_size:
        try:
            root = bytes.fromhex(session.audit_tree_root)
        except ValueError as e:
            raise fail("the profile's saved audit tree head is malformed; log in again",
                       _exit.USAGE) from e
        client.audit_head = (session.audit_tree_size, root)
    view = client.participant_audit(task, limit)
    if session is not None:
        session.audit_tree_size = view.tree_head.tree_size
        session.audit_tree_root = view.tree_head.root.hex()
        session.save()
    return view


def _rows(view: ParticipantAudit) -> list[dict[str, Any]]:
    return [{"seq": e.seq, "time": e.time, "microsecond": e.microsecond, "actor": e.actor,
             "user": e.user, "message": e.message, "ok": e.result, "ip": e.ip.hex(),
             "task_ids": list(e.task_ids), "function_ids": list(e.function_ids),
             "file_ids": list(e.file_ids)} for e in view.entries]


def _head(view: ParticipantAudit) -> dict[str, Any]:
    h = view.tree_head
    return {"tree_size": h.tree_size, "root": h.root.hex(), "issued": h.issued}


def _table(view: ParticipantAudit) -> None:
    from rich.table import Table

    table = Table(title=f"{len(view.entries)} audit entries (verified against the signed tree "
                        f"of {view.tree_head.tree_size}, issued {view.tree_head.issued})")
    for column in ("time (UTC)", "#", "who", "call", "result", "task", "function / files"):
        table.add_column(column, overflow="fold")
    for e in view.entries:
        table.add_row(e.time, str(e.seq), e.actor or "-", e.message,
                      "ok" if e.result else "denied", "\n".join(e.task_ids) or "-",
                      "\n".join((*e.function_ids, *e.file_ids)) or "-")
    console.print(table)


@app.callback(invoke_without_command=True)
def participant(ctx: typer.Context, task: TaskFilter = None, limit: Limit = 100,
                json_out: Json = False) -> None:
    """The audit entries you may see, newest first, each verified to be in the log.

    Your own calls and logins, and every entry naming a task you take part in
    (creator, data owner, function owner), a function you own or a file you own.
    """
    if ctx.invoked_subcommand is not None:
        return

    def go() -> None:
        view = _fetch(task, limit)
        emit({"entries": _rows(view), "tree_head": _head(view), "verified": True}, json_out,
             lambda: _table(view))
    run(go)


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
def verify(data_dir: Annotated[Path | None, typer.Option(
               "--data-dir", "-d", help="Operator: check the whole chain in this data dir "
               "(where the platform secret is) instead of your entries.")] = None,
           database_url: Annotated[str | None, typer.Option(
               envvar="CONFIDE_DATABASE_URL")] = None,
           task: TaskFilter = None, limit: Limit = 10000,
           json_out: Json = False) -> None:
    """Verify the entries you may see against the tree head the attested server signed.

    With --data-dir (operator): check the whole HMAC chain where the platform secret is.
    """
    if data_dir is None and database_url is None:
        _verify_participant(task, limit, json_out)
        return
    _verify_chain(data_dir or Path("confide-data"), database_url, json_out)


def _verify_participant(task: str | None, limit: int, json_out: bool) -> None:
    from ..client import AuditProofError

    def go() -> None:
        try:
            view = _fetch(task, limit)
        except AuditProofError as e:
            emit({"verified": False, "error": e.message}, json_out)
            raise fail(f"your audit entries do NOT verify: {e.message}", _exit.SERVER) from e
        h = view.tree_head
        emit({"verified": True, "entries": len(view.entries), "tree_head": _head(view)},
             json_out, f"{len(view.entries)} audit entries verify: each is in the tree of "
             f"{h.tree_size} entries (root {h.root.hex()[:16]}…) signed at {h.issued} by "
             "the attested server")
    run(go)


def _verify_chain(data_dir: Path, database_url: str | None, json_out: bool) -> None:
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
