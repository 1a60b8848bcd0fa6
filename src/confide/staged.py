"""A staged task: what the scheduler hands an execution worker (spec §5.1).

The scheduler service writes it into its queue when a task is invoked; the
scheduler's gRPC adapter sends it (``confide.rpc.staged_to_proto``) and the
worker reads it back (``confide.rpc.staged_from_proto``) and runs it. It is
plain data below all three, so none of them imports another for it; it
imports nothing of confide.

``to_dict``/``from_dict`` are the queue row's body (CBOR, sealed by storage):
rows written by earlier versions use the same keys, so keep them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["StagedApproval", "StagedFile", "StagedTask"]


@dataclass(frozen=True)
class StagedFile:
    """One input or output of a staged task, with what it takes to move it."""

    name: str  # the data name the function uses
    url: str
    cmac: bytes  # the registered tag of an input; b"" for an output not yet written
    schema: str  # crypto schema: "aes-gcm-128", "teaclave-file-128", "raw", ...
    key: bytes
    iv: bytes
    file_id: str = ""  # the registered file (what a signed approval names)
    owners: tuple[str, ...] = ()  # an output's owners (signed approvals cover them)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "url": self.url, "cmac": self.cmac, "schema": self.schema,
                "key": self.key, "iv": self.iv, "file_id": self.file_id,
                "owners": list(self.owners)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StagedFile:
        return cls(name=str(d["name"]), url=str(d["url"]), cmac=bytes(d["cmac"]),
                   schema=str(d["schema"]), key=bytes(d["key"]), iv=bytes(d["iv"]),
                   file_id=str(d.get("file_id", "")),
                   owners=tuple(str(o) for o in d.get("owners", ())))


@dataclass(frozen=True)
class StagedApproval:
    """What a worker needs, beyond the task itself, to recompute the approval
    statement of a task that requires signed approvals, and the signatures."""

    participants: tuple[str, ...]
    signers: tuple[tuple[str, bytes], ...]  # (user id, raw Ed25519 public key)
    groups: tuple[tuple[str, int, tuple[str, ...]], ...]  # (name, k, members)
    measurements: tuple[bytes, ...]
    not_after: int
    signatures: tuple[tuple[str, bytes], ...]  # (user id, signature)

    def to_dict(self) -> dict[str, object]:
        return {"participants": list(self.participants),
                "signers": [list(s) for s in self.signers],
                "groups": [[n, k, list(m)] for n, k, m in self.groups],
                "measurements": list(self.measurements), "not_after": self.not_after,
                "signatures": [list(s) for s in self.signatures]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StagedApproval:
        return cls(participants=tuple(str(p) for p in d["participants"]),
                   signers=tuple((str(u), bytes(k)) for u, k in d["signers"]),
                   groups=tuple((str(n), int(k), tuple(str(x) for x in m))
                                for n, k, m in d["groups"]),
                   measurements=tuple(bytes(m) for m in d["measurements"]),
                   not_after=int(d["not_after"]),
                   signatures=tuple((str(u), bytes(s)) for u, s in d["signatures"]))


@dataclass(frozen=True)
class StagedTask:
    """A task leased to a worker: the function, its final arguments, its files."""

    task_id: str
    function_id: str
    function_name: str
    function_payload: bytes
    executor_type: str  # the function's type (confide.executor_registry)
    executor: str  # the task's executor name (confide.executor_registry)
    function_arguments: str  # the final argument object, JSON text
    inputs: tuple[StagedFile, ...]
    outputs: tuple[StagedFile, ...]
    approval: StagedApproval | None = None  # set: signed approvals required

    def to_dict(self) -> dict[str, object]:
        return {
            "task_id": self.task_id, "function_id": self.function_id,
            "function_name": self.function_name, "function_payload": self.function_payload,
            "executor_type": self.executor_type, "executor": self.executor,
            "function_arguments": self.function_arguments,
            "inputs": [f.to_dict() for f in self.inputs],
            "outputs": [f.to_dict() for f in self.outputs],
            "approval": None if self.approval is None else self.approval.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StagedTask:
        return cls(
            task_id=str(d["task_id"]), function_id=str(d["function_id"]),
            function_name=str(d["function_name"]), function_payload=bytes(d["function_payload"]),
            executor_type=str(d["executor_type"]), executor=str(d["executor"]),
            function_arguments=str(d["function_arguments"]),
            inputs=tuple(StagedFile.from_dict(f) for f in d["inputs"]),
            outputs=tuple(StagedFile.from_dict(f) for f in d["outputs"]),
            approval=None if d.get("approval") is None
            else StagedApproval.from_dict(d["approval"]),
        )
