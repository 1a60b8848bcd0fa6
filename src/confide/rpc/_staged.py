"""The staged task on the wire (``confide.v1.StagedTask``), both directions.

The scheduler's gRPC adapter sends it, the execution worker receives it; the
conversion lives here, below both, so neither imports the other.
"""

from __future__ import annotations

from ..staged import StagedApproval, StagedFile, StagedTask
from ._gen import confide_v1_pb2 as v1
from ._gen import teaclave_common_pb2 as common

__all__ = ["staged_from_proto", "staged_to_proto"]


def _file_to_proto(f: StagedFile) -> v1.StagedFile:
    return v1.StagedFile(name=f.name, url=f.url, cmac=f.cmac,
                         crypto_info=common.FileCryptoInfo(schema=f.schema, key=f.key, iv=f.iv),
                         file_id=f.file_id, owners=list(f.owners))


def _file_from_proto(p: v1.StagedFile) -> StagedFile:
    return StagedFile(name=p.name, url=p.url, cmac=p.cmac, schema=p.crypto_info.schema,
                      key=p.crypto_info.key, iv=p.crypto_info.iv, file_id=p.file_id,
                      owners=tuple(p.owners))


def _approval_to_proto(a: StagedApproval) -> v1.StagedApproval:
    return v1.StagedApproval(
        participants=list(a.participants),
        signers=[v1.StagedSigner(user_id=u, public_key=k) for u, k in a.signers],
        groups=[v1.ApprovalGroup(name=n, k=k, members=list(m)) for n, k, m in a.groups],
        measurements=list(a.measurements), not_after=a.not_after,
        signatures=dict(a.signatures))


def _approval_from_proto(p: v1.StagedApproval) -> StagedApproval:
    return StagedApproval(
        participants=tuple(p.participants),
        signers=tuple((s.user_id, s.public_key) for s in p.signers),
        groups=tuple((g.name, g.k, tuple(g.members)) for g in p.groups),
        measurements=tuple(p.measurements), not_after=p.not_after,
        signatures=tuple(sorted(p.signatures.items())))


def staged_to_proto(s: StagedTask) -> v1.StagedTask:
    return v1.StagedTask(
        task_id=s.task_id, function_id=s.function_id, function_name=s.function_name,
        function_payload=s.function_payload, executor_type=s.executor_type,
        executor=s.executor, function_arguments=s.function_arguments,
        inputs=[_file_to_proto(f) for f in s.inputs],
        outputs=[_file_to_proto(f) for f in s.outputs],
        approval=None if s.approval is None else _approval_to_proto(s.approval))


def staged_from_proto(p: v1.StagedTask) -> StagedTask:
    return StagedTask(
        task_id=p.task_id, function_id=p.function_id, function_name=p.function_name,
        function_payload=p.function_payload, executor_type=p.executor_type,
        executor=p.executor, function_arguments=p.function_arguments,
        inputs=tuple(_file_from_proto(f) for f in p.inputs),
        outputs=tuple(_file_from_proto(f) for f in p.outputs),
        approval=_approval_from_proto(p.approval) if p.HasField("approval") else None)
