"""notify/listen between processes: PostgreSQL NOTIFY/LISTEN (and in-process on SQLite)."""

from __future__ import annotations

import os
import queue
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from confide.crypto.records import RecordSealer
from confide.storage import Database

pytestmark = pytest.mark.postgres


def _get(q: queue.Queue[str], timeout: float = 10.0) -> str:
    return q.get(timeout=timeout)


def test_a_notification_reaches_a_listener_on_another_connection(pg_url: str) -> None:
    sealer = RecordSealer(os.urandom(32))
    scheduler_side, frontend_side = Database(pg_url, sealer), Database(pg_url, sealer)
    got: queue.Queue[str] = queue.Queue()
    listener = scheduler_side.listen("work", got.put)
    assert _get(got) == ""  # connected: "re-check what you may have missed"
    frontend_side.notify("work")
    frontend_side.notify("task_ended", "task-1")  # another channel: not delivered here
    frontend_side.notify("work", "task-2")
    assert [_get(got), _get(got)] == ["", "task-2"]
    listener.close()
    frontend_side.notify("work", "after close")
    with pytest.raises(queue.Empty):
        got.get(timeout=1.0)
    scheduler_side.close()
    frontend_side.close()


def test_a_listener_reconnects_after_its_connection_is_killed(pg_url: str) -> None:
    db = Database(pg_url, RecordSealer(os.urandom(32)))
    got: queue.Queue[str] = queue.Queue()
    db.listen("work", got.put)
    assert _get(got) == ""
    engine = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:  # what a database restart does to it
        c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                       "AND query LIKE 'LISTEN%'"))
    assert _get(got) == ""  # reconnected (and told to re-check)
    db.notify("work", "again")
    assert _get(got) == "again"
    engine.dispose()
    db.close()


@pytest.mark.parametrize("channel", ["", "Work", "work; DROP TABLE tasks", "a" * 64, "1work"])
def test_an_invalid_channel_is_refused(pg_url: str, channel: str) -> None:
    db = Database(pg_url, RecordSealer(os.urandom(32)))
    with pytest.raises(ValueError, match="invalid notification channel"):
        db.notify(channel)
    with pytest.raises(ValueError, match="invalid notification channel"):
        db.listen(channel, lambda _p: None)
    db.close()


def test_an_oversized_payload_is_refused(pg_url: str) -> None:
    db = Database(pg_url, RecordSealer(os.urandom(32)))
    with pytest.raises(ValueError, match="payload"):
        db.notify("work", "x" * 8000)
    db.close()


def test_on_sqlite_notifications_are_delivered_in_process(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'c.db'}", RecordSealer(os.urandom(32)))
    got: list[str] = []
    listener = db.listen("work", got.append)
    db.notify("work", "task-1")
    db.notify("other", "x")
    listener.close()
    db.notify("work", "task-2")
    assert got == ["task-1"]
    db.close()
