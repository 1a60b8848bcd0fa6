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
from ..executor_registry import MESAPY
from ..mesapy import staged_payload
from ..storage import Record, Txn

__all__ = [
    "ApprovalPolicy",
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
    "signing_key_of",
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
    # Tasks created from this function require signed approvals (confide.v1).
    require_signed: bool = False
    # A python function's dialect (confide.mesapy): "python3" or "python2" (MesaPy mode,
    # whose translation, staged instead of the payload, is made once at registration).
    # Records written before these fields existed read as Python 3.
    dialect: str = "python3"
    translation: bytes = b""

    def program(self) -> bytes:
        """What a worker runs: the payload, or for a MesaPy-mode function its translation
        (confide.mesapy); signed approvals hash exactly this (docs/signed-approvals.md)."""
        if self.executor_type != MESAPY.function_type:
            return self.payload
        return staged_payload(self.dialect, self.payload, self.translation)

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
class ApprovalPolicy:
    """A task's signed-approval policy (docs/signed-approvals.md).

    Every participant signs, except a participant named by a group, for whom
    ``k`` of its members sign. ``not_after`` bounds when a worker may run it;
    ``measurements`` are the worker measurements allowed to.
    """

    groups: list[tuple[str, int, list[str]]] = field(default_factory=list)
    not_after: int = 0
    measurements: list[bytes] = field(default_factory=list)

    def to_dict(self) -> Record:
        return {"groups": [[n, k, list(m)] for n, k, m in self.groups],
                "not_after": self.not_after, "measurements": list(self.measurements)}

    @classmethod
    def from_dict(cls, d: Record) -> ApprovalPolicy:
        return cls([(str(n), int(k), [str(x) for x in m]) for n, k, m in d["groups"]],
                   int(d["not_after"]), [bytes(m) for m in d["measurements"]])

    def signers(self, participants: list[str]) -> list[str]:
        """Who signs: participants not named by a group, and every group's members."""
        named = {n for n, _k, _m in self.groups}
        out = {p for p in participants if p not in named}
        for _n, _k, members in self.groups:
            out.update(members)
        return sorted(out)

    def missing(self, participants: list[str], signatures: dict[str, bytes]) -> list[str]:
        """Participants (or ``group (k of n)``) whose signed approval is missing."""
        groups = {n: (k, m) for n, k, m in self.groups}
        out: list[str] = []
        for p in sorted(participants):
            if p in groups:
                k, members = groups[p]
                if sum(1 for m in members if m in signatures) < k:
                    out.append(f"{p} ({k} of {', '.join(members)})")
            elif p not in signatures:
                out.append(p)
        return out

    def satisfied_by(self, participants: list[str], signatures: dict[str, bytes]) -> bool:
        return not self.missing(participants, signatures)


def signing_key_of(txn: Txn, user_id: str) -> bytes | None:
    """The user's registered Ed25519 public key (raw), from their MAC-protected row."""
    row = txn.get("users", user_id)
    if row is None:
        return None
    key = row.body.get("signing_key")
    return bytes(key) if isinstance(key, bytes) else None


@dataclass
class TaskResult:
    ok: bool
    return_value: bytes = b""
    tags_map: dict[str, bytes] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    reason: str = ""
    detail: str = ""  # a failure's cause beyond ``reason`` (confide.v1 ReviewTask only)
    receipt: bytes = b""  # the worker's signed receipt (crypto/receipts.py)

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
    # Signed approvals (docs/signed-approvals.md): None = an unsigned (Teaclave) task.
    approval_policy: ApprovalPolicy | None = None
    signatures: dict[str, bytes] = field(default_factory=dict)  # signer -> Ed25519 signature

    def to_dict(self) -> Record:
        d = dict(self.__dict__)
        d["status"] = int(self.status)
        d["result"] = None if self.result is None else dict(self.result.__dict__)
        d["approval_policy"] = None if self.approval_policy is None \
            else self.approval_policy.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Record) -> TaskRecord:
        d = dict(d)
        d["status"] = TaskStatus(d["status"])
        if d["result"] is not None:
            d["result"] = TaskResult(**d["result"])
        if d.get("approval_policy") is not None:
            d["approval_policy"] = ApprovalPolicy.from_dict(d["approval_policy"])
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
        if self.approval_policy is not None:
            return self.approval_policy.satisfied_by(self.participants, self.signatures)
        return len(self.participants) == 1 or set(self.approved_users) == set(self.participants)

    def waiting_for(self) -> list[str]:
        """Participants whose approval is still missing (sorted)."""
        if self.everyone_approved():
            return []
        if self.approval_policy is not None:
            return self.approval_policy.missing(self.participants, self.signatures)
        return sorted(set(self.participants) - set(self.approved_users))

    def unassigned(self) -> list[str]:
        """Data names declared but not assigned yet (sorted)."""
        return sorted((set(self.inputs_ownership) - set(self.assigned_inputs))
                      | (set(self.outputs_ownership) - set(self.assigned_outputs)))
