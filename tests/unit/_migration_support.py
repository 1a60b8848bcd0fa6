"""A database of the previous schema (v1: no ``user_names``) with real sealed
rows in it, and a snapshot of every row read back through the storage API.

"Previous schema" two ways: built by Alembic's revision 0001 (what upgrading
from a stamped database does), or *pre-Alembic* (``meta.schema_version`` = 1
and no ``alembic_version``: what the hand-written migrations left). The
pre-Alembic one is the same database with the Alembic table dropped; that the
DDL of revision 0001 equals the previous release's is checked separately
against a frozen copy of its tables (``test_migrations``).
"""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from sqlalchemy import create_engine, inspect, text

from confide.config import Limits
from confide.crypto.records import RecordSealer
from confide.services._notify import Notifier
from confide.services._records import TaskRecord, TaskStatus
from confide.services.audit import AuditLog
from confide.services.authentication import AuthenticationService, TokenSigner
from confide.services.management import Context, Management
from confide.services.scheduler import Scheduler
from confide.storage import SCHEMA_VERSION, Database, Record, Schema

from ._auth_support import Clock
from ._services import ALICE, Platform, staged_task

HEAD = f"{SCHEMA_VERSION:04d}"  # the head revision's id
SEAL_KEY = b"r" * 32
AUDIT_KEY = b"a" * 32
V1_TABLES = ("users", "functions", "files", "tasks", "queue", "audit")
HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)

Snapshot = dict[str, dict[str, tuple[dict[str, object], Record]]]


@dataclass
class Populated:
    task_id: str
    audit_entries: int
    snapshot: Snapshot


def open_db(url: str, revision: str = "head") -> Database:
    return Database(url, RecordSealer(SEAL_KEY), revision=revision)


def snapshot(db: Database, names: tuple[str, ...] = V1_TABLES) -> Snapshot:
    """Every row of ``names``, opened (a MAC that fails raises ``Tampered``)."""
    with db.read() as txn:
        return {name: {row.id: (dict(row.columns), row.body) for row in txn.scan(name)}
                for name in names}


def populate_v1(db: Database) -> Populated:
    """Users, a function, input and output files, a staged task (queue), audit entries."""
    with db.write() as txn:
        for uid, role in (("admin", "PlatformAdmin"), ("alice", "DataOwner-bank-a"),
                          ("bob", "DataOwner-bank-b"), ("fo", "FunctionOwner")):
            txn.insert("users", uid, {"hash": HASHER.hash(f"pw-{uid}"), "role": role, "gen": 0})
    clock, notifier = Clock(), Notifier()
    p = Platform(db, clock, notifier,
                 Management(Context(db, notifier, Limits(), clock), role_of=lambda _u: None),
                 Scheduler(db, notifier, clock=clock, executor_timeout_s=30.0))
    task = staged_task(p)
    audit = AuditLog(db, AUDIT_KEY, clock=clock)
    for i in range(5):
        audit.append(user=ALICE.user_id, message=f"create_task {i}", result=True,
                     ip=bytes(16))
    count = audit.verify_chain()
    snap = snapshot(db)
    assert all(snap[name] for name in V1_TABLES), {k: len(v) for k, v in snap.items()}
    return Populated(task.task_id, count, snap)


def forget_alembic(url: str) -> None:
    """Make the database look as the hand-written migrations left it."""
    engine = create_engine(url)
    with engine.begin() as c:
        c.execute(text("DROP TABLE alembic_version"))
        marker = c.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar()
        assert marker is not None and bytes(marker) == b"1"
    engine.dispose()


def _auth(db: Database) -> AuthenticationService:
    return AuthenticationService(db, TokenSigner(b"t" * 64, 3600), clock=Clock(),
                                 limits=Limits(), audit=AuditLog(db, AUDIT_KEY, clock=Clock()))


def check_intact(db: Database, before: Populated) -> None:
    """Every record reads as written (MACs verify), the chain verifies, users log in."""
    assert snapshot(db) == before.snapshot
    assert AuditLog(db, AUDIT_KEY, clock=Clock()).verify_chain() == before.audit_entries
    with db.read() as txn:
        task = TaskRecord.load(txn, before.task_id)
    assert task is not None and task.status == TaskStatus.STAGED
    auth = _auth(db)
    auth.index_user_names()
    assert auth.login("alice", "pw-alice", ip=bytes(16))
    with db.read() as txn:
        assert len(list(txn.scan("user_names"))) == 4


def check_upgrade_from_v1(url: str, *, pre_alembic: bool) -> None:
    """Build a v1 database with data, start this release on it, find it intact."""
    db = open_db(url, "0001")
    assert Schema(url).current() == "0001"
    assert not inspect(db.engine).has_table("user_names")
    before = populate_v1(db)
    db.close()
    if pre_alembic:
        forget_alembic(url)
    db = open_db(url)  # what `confide serve` does at start
    try:
        assert db.migrate() == SCHEMA_VERSION  # upgraded already, and stamped
        assert Schema(url).current() == HEAD
        check_intact(db, before)
    finally:
        db.close()


def check_round_trip(url: str) -> None:
    """head -> 0001 -> head with data: nothing lost either way."""
    db = open_db(url, "0001")
    before = populate_v1(db)
    db.close()
    db = open_db(url)
    check_intact(db, before)  # its login adds to the audit log: snapshot again
    before = Populated(before.task_id, AuditLog(db, AUDIT_KEY, clock=Clock()).verify_chain(),
                       snapshot(db))
    db.close()
    schema = Schema(url)
    try:
        assert schema.downgrade("0001") == HEAD
        assert schema.current() == "0001"
        db = open_db(url, "0001")  # the previous schema opens and reads everything
        assert snapshot(db) == before.snapshot
        assert not inspect(db.engine).has_table("user_names")
        db.close()
        assert schema.upgrade() == "0001"
        assert schema.current() == HEAD
    finally:
        schema.close()
    db = open_db(url)
    try:
        check_intact(db, before)
    finally:
        db.close()
