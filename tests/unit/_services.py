"""The services wired on the storage seam, without gRPC: a SQLite database in a
temporary directory, a clock the test moves, and the callers as principals.

What ``confide.node`` wires for a node, minus the servers: the unit tests of
the task state machine, the scheduler and authentication call the services
directly, as the gRPC adapters do.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from confide.config import Limits
from confide.crypto.records import RecordSealer
from confide.errors import Code, ServiceError
from confide.services._identity import Principal, Role, RoleKind
from confide.services._notify import Notifier
from confide.services._records import (
    ArgumentSpec,
    CryptoInfo,
    DataSpec,
    TaskRecord,
    TaskResult,
)
from confide.services.management import (
    Context,
    DataAssignment,
    DataOwners,
    FunctionSpecInput,
    Management,
)
from confide.services.scheduler import Scheduler
from confide.staged import StagedTask
from confide.storage import Database

from ._auth_support import Clock

EXECUTOR_TIMEOUT_S = 30.0
AES_GCM_128 = CryptoInfo("aes-gcm-128", bytes(range(16)), bytes(range(12)))


def sqlite_database(directory: Path) -> Database:
    """A fresh database on the storage seam (SQLite, a random platform key)."""
    return Database(f"sqlite:///{directory / 'confide.db'}", RecordSealer(os.urandom(32)))


def admin(user_id: str = "admin") -> Principal:
    return Principal(user_id, Role(RoleKind.PLATFORM_ADMIN))


def function_owner(user_id: str) -> Principal:
    return Principal(user_id, Role(RoleKind.FUNCTION_OWNER))


def data_owner(user_id: str, attribute: str | None = None) -> Principal:
    return Principal(user_id, Role(RoleKind.DATA_OWNER, attribute or user_id))


@contextmanager
def refused(code: Code, message: str | None = None) -> Iterator[None]:
    """``with refused(Code.PERMISSION_DENIED): ...`` — the block raises that error."""
    with pytest.raises(ServiceError) as info:
        yield
    assert info.value.code == code, info.value
    if message is not None:
        assert info.value.message == message, info.value


@dataclass
class Platform:
    """Management and the scheduler on one database, as a node wires them."""

    db: Database
    clock: Clock
    notifier: Notifier
    management: Management
    scheduler: Scheduler

    # -- what the frontend's task RPCs do ----------------------------------
    def task(self, task_id: str) -> TaskRecord:
        with self.db.read() as txn:
            record = TaskRecord.load(txn, task_id)
        assert record is not None
        return record

    def invoke(self, who: Principal, task_id: str) -> None:
        self.management.tasks.invoke(who, task_id, self.scheduler.stage)

    def cancel(self, who: Principal, task_id: str) -> None:
        self.management.tasks.cancel(who, task_id, self.scheduler.unstage)

    # -- what the scheduler's RPCs do --------------------------------------
    def pull(self, executor_id: str) -> StagedTask | None:
        """One lease attempt, no waiting (PullTask with wait_ms=0)."""
        return asyncio.run(self.scheduler.pull(executor_id, 0.0))

    def report(self, executor_id: str, task_id: str, result: TaskResult) -> None:
        self.scheduler.report(executor_id, task_id, result)


def platform(directory: Path, *, limits: Limits | None = None,
             db: Database | None = None) -> Platform:
    """The services on ``db`` (default: a fresh SQLite database in ``directory``)."""
    db = db if db is not None else sqlite_database(directory)
    clock = Clock()
    notifier = Notifier()
    management = Management(Context(db, notifier, limits or Limits(), clock),
                            role_of=lambda _user: None)
    scheduler = Scheduler(db, notifier, clock=clock, executor_timeout_s=EXECUTOR_TIMEOUT_S)
    return Platform(db, clock, notifier, management, scheduler)


# -- a three-party task: a function owner, an input owner, an output owner ----
@dataclass
class ThreeParties:
    function_id: str
    task_id: str
    input_id: str
    output_id: str
    creator: Principal  # alice: owns the input, creates the task
    output_owner: Principal  # bob
    owner: Principal  # the function owner (a participant: the function is private)


ALICE = data_owner("alice", "bank-a")
BOB = data_owner("bob", "bank-b")
FUNCTION_OWNER = function_owner("fo")
MALLORY = data_owner("mallory", "bank-m")


def register_function(p: Platform, owner: Principal = FUNCTION_OWNER, *, public: bool = False,
                      allow: tuple[str, ...] = ("alice",), quota: int = -1,
                      outputs: tuple[str, ...] = ("out",)) -> str:
    return p.management.functions.register(owner, FunctionSpecInput(
        name="builtin-echo", description="", executor_type="builtin", public=public,
        payload=b"", arguments=[ArgumentSpec("message", "", True),
                                ArgumentSpec("save_log", "false", False)],
        inputs=[DataSpec("in", "", False)], outputs=[DataSpec(o, "", False) for o in outputs],
        user_allowlist=list(allow), usage_quota=quota))


def register_input(p: Platform, who: Principal) -> str:
    return p.management.files.register_input(who, "https://data.example/in", bytes(16),
                                             AES_GCM_128)


def register_output(p: Platform, who: Principal) -> str:
    return p.management.files.register_output(who, "https://data.example/out", AES_GCM_128)


def three_party_task(p: Platform, *, quota: int = -1) -> ThreeParties:
    """Created and with its data assigned (DataAssigned), nobody approved yet."""
    fid = register_function(p, quota=quota)
    tid = p.management.tasks.create(ALICE, fid, '{"message": "hi"}', "builtin",
                                    [DataOwners("in", ["alice"])], [DataOwners("out", ["bob"])])
    input_id = register_input(p, ALICE)
    output_id = register_output(p, BOB)
    p.management.tasks.assign(ALICE, tid, [DataAssignment("in", input_id)], [])
    p.management.tasks.assign(BOB, tid, [], [DataAssignment("out", output_id)])
    return ThreeParties(fid, tid, input_id, output_id, ALICE, BOB, FUNCTION_OWNER)


def approve_all(p: Platform, t: ThreeParties) -> None:
    for who in (t.creator, t.output_owner, t.owner):
        p.management.tasks.approve(who, t.task_id)


def staged_task(p: Platform) -> ThreeParties:
    """A three-party task approved by everyone and invoked (Staged, queued)."""
    t = three_party_task(p)
    approve_all(p, t)
    p.invoke(t.creator, t.task_id)
    return t
