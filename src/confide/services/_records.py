"""The platform's records (functions, files, tasks) as stored in the database.

Shared by management (which creates and changes them) and the scheduler
(which moves staged tasks to executors and records results). Each record
round-trips through a plain dict that ``confide.storage`` seals.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import NamedTuple

from .._status import TaskStatus
from ..storage import Record, Txn

__all__ = [
    "ArgumentSpec",
    "CryptoInfo",
    "DataSpec",
    "FileRecord",
    "FunctionRecord",
    "IdKind",
    "TaskRecord",
    "TaskResult",
    "TaskStatus",
    "new_id",
    "parse_id",
]


class IdKind:
    INPUT = "input"
    OUTPUT = "output"
    FUNCTION = "function"
    TASK = "task"


_UUID = re.compile(r"^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")


def new_id(kind: str) -> str:
    return f"{kind}-{uuid.uuid4()}"


def parse_id(text: str) -> str | None:
    """Canonical ``<kind>-<uuid>`` for an id in any accepted spelling (spec §3.4).

    The text is split at the first ``-``; the rest must be a UUID (hyphenated
    or 32 hex digits, any case). Returns None when it does not parse. The kind
    is not checked here: an id of the wrong kind is simply not found.
    """
    if len(text) > 128:
        return None
    prefix, sep, rest = text.partition("-")
    if not sep or not _UUID.match(rest):
        return None
    return f"{prefix}-{uuid.UUID(rest)}"


@dataclass
class CryptoInfo:
    schema: str
    key: bytes
    iv: bytes


@dataclass
class FileRecord:
    id: str
    url: str
    crypto: CryptoInfo
    owners: list[str]
    cmac: bytes | None = None
    # The plaintext size its owner declared (confide.v1 RegisterInputFile);
    # None when unknown. Only for an early cap check: the worker enforces caps.
    plaintext_size: int | None = None

    def to_dict(self) -> Record:
        return {**self.__dict__, "crypto": dict(self.crypto.__dict__)}

    @classmethod
    def from_dict(cls, d: Record) -> FileRecord:
        return cls(d["id"], d["url"], CryptoInfo(**d["crypto"]), list(d["owners"]), d["cmac"],
                   d.get("plaintext_size"))

    @classmethod
    def load(cls, txn: Txn, file_id: str, *, lock: bool = False) -> FileRecord | None:
        row = txn.get("files", file_id, lock=lock)
        return None if row is None else cls.from_dict(row.body)

    def insert(self, txn: Txn) -> None:
        txn.insert("files", self.id, self.to_dict())

    def save(self, txn: Txn) -> None:
        txn.update("files", self.id, self.to_dict())


class ArgumentSpec(NamedTuple):
    """One argument a function declares (stored as a CBOR array of the three)."""

    key: str
    default_value: str
    allow_overwrite: bool  # True: the task creator supplies it; False: default_value is used


class DataSpec(NamedTuple):
    """One input or output file a function declares (stored as a CBOR array)."""

    name: str
    description: str
    optional: bool


@dataclass
class FunctionRecord:
    id: str
    seq: int
    name: str
    description: str
    executor_type: str  # a function type of confide.executor_registry
    public: bool
    payload: bytes
    arguments: list[ArgumentSpec]
    inputs: list[DataSpec]
    outputs: list[DataSpec]
    owner: str
    user_allowlist: list[str]
    usage_quota: int | None  # None = unlimited
    usage: int = 0
    disabled: bool = False
    # Who may read the payload in ReviewTask: "open" (the participants of a task
    # using it) or "confidential" (its hash and owner only). Records written
    # before this field existed read as confidential, Teaclave's behaviour.
    code_review: str = "confidential"
    # A python function's dialect (confide.mesapy): "python3" or "python2" (MesaPy mode,
    # whose translation, staged instead of the payload, is made once at registration).
    # Records written before these fields existed read as Python 3.
    dialect: str = "python3"
    translation: bytes = b""

    def to_dict(self) -> Record:
        return dict(self.__dict__)  # CBOR writes the named tuples as arrays

    @classmethod
    def from_dict(cls, d: Record) -> FunctionRecord:
        d = dict(d)
        d["arguments"] = [ArgumentSpec(*a) for a in d["arguments"]]
        d["inputs"] = [DataSpec(*f) for f in d["inputs"]]
        d["outputs"] = [DataSpec(*f) for f in d["outputs"]]
        return cls(**d)

    @classmethod
    def load(cls, txn: Txn, function_id: str, *, lock: bool = False) -> FunctionRecord | None:
        row = txn.get("functions", function_id, lock=lock)
        return None if row is None else cls.from_dict(row.body)

    def insert(self, txn: Txn) -> None:
        txn.insert("functions", self.id, self.to_dict(), seq=self.seq, owner=self.owner)

    def save(self, txn: Txn) -> None:
        txn.update("functions", self.id, self.to_dict(), seq=self.seq, owner=self.owner)


@dataclass
class TaskResult:
    ok: bool
    return_value: bytes = b""
    tags_map: dict[str, bytes] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    reason: str = ""
    detail: str = ""  # a failure's cause beyond ``reason`` (confide.v1 ReviewTask only)

    @classmethod
    def err(cls, reason: str, *, log: list[str] | None = None, detail: str = "") -> TaskResult:
        return cls(ok=False, reason=reason, log=list(log or []), detail=detail)


@dataclass
class TaskRecord:
    id: str
    seq: int
    creator: str
    function_id: str
    function_owner: str
    function_arguments: str
    executor: str
    inputs_ownership: dict[str, list[str]]
    outputs_ownership: dict[str, list[str]]
    participants: list[str]
    approved_users: list[str] = field(default_factory=list)
    assigned_inputs: dict[str, str] = field(default_factory=dict)
    assigned_outputs: dict[str, str] = field(default_factory=dict)
    status: TaskStatus = TaskStatus.CREATED
    result: TaskResult | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    rejections: dict[str, str] = field(default_factory=dict)  # participant -> reason

    def to_dict(self) -> Record:
        d = dict(self.__dict__)
        d["status"] = int(self.status)
        d["result"] = None if self.result is None else dict(self.result.__dict__)
        return d

    @classmethod
    def from_dict(cls, d: Record) -> TaskRecord:
        d = dict(d)
        d["status"] = TaskStatus(d["status"])
        if d["result"] is not None:
            d["result"] = TaskResult(**d["result"])
        return cls(**d)

    @classmethod
    def load(cls, txn: Txn, task_id: str, *, lock: bool = False) -> TaskRecord | None:
        row = txn.get("tasks", task_id, lock=lock)
        return None if row is None else cls.from_dict(row.body)

    def insert(self, txn: Txn) -> None:
        txn.insert("tasks", self.id, self.to_dict(), seq=self.seq, status=int(self.status))

    def save(self, txn: Txn) -> None:
        txn.update("tasks", self.id, self.to_dict(), seq=self.seq, status=int(self.status))

    # -- derived predicates (spec §3.7.3) ----------------------------------
    def all_data_assigned(self) -> bool:
        return set(self.inputs_ownership) == set(self.assigned_inputs) and set(
            self.outputs_ownership
        ) == set(self.assigned_outputs)

    def everyone_approved(self) -> bool:
        return len(self.participants) == 1 or set(self.approved_users) == set(self.participants)

    def waiting_for(self) -> list[str]:
        """Participants whose approval is still missing (sorted)."""
        if self.everyone_approved():
            return []
        return sorted(set(self.participants) - set(self.approved_users))

    def unassigned(self) -> list[str]:
        """Data names declared but not assigned yet (sorted)."""
        return sorted((set(self.inputs_ownership) - set(self.assigned_inputs))
                      | (set(self.outputs_ownership) - set(self.assigned_outputs)))
