"""The staged task on the wire (``confide.v1.StagedTask``), both directions.

The scheduler's gRPC adapter sends it, the execution worker receives it; the
conversion lives here, below both, so neither imports the other.
"""

from __future__ import annotations

from ..staged import StagedFile, StagedTask
from ._gen import confide_v1_pb2 as v1
from ._gen import teaclave_common_pb2 as common

__all__ = ["staged_from_proto", "staged_to_proto"]


def _file_to_proto(f: StagedFile) -> v1.StagedFile:
    return v1.StagedFile(name=f.name, url=f.url, cmac=f.cmac,
                         crypto_info=common.FileCryptoInfo(schema=f.schema, key=f.key, iv=f.iv))


def _file_from_proto(p: v1.StagedFile) -> StagedFile:
    return StagedFile(name=p.name, url=p.url, cmac=p.cmac, schema=p.crypto_info.schema,
                      key=p.crypto_info.key, iv=p.crypto_info.iv)


def staged_to_proto(s: StagedTask) -> v1.StagedTask:
    return v1.StagedTask(
        task_id=s.task_id, function_id=s.function_id, function_name=s.function_name,
        function_payload=s.function_payload, executor_type=s.executor_type,
        executor=s.executor, function_arguments=s.function_arguments,
        inputs=[_file_to_proto(f) for f in s.inputs],
        outputs=[_file_to_proto(f) for f in s.outputs])


def staged_from_proto(p: v1.StagedTask) -> StagedTask:
    return StagedTask(
        task_id=p.task_id, function_id=p.function_id, function_name=p.function_name,
        function_payload=p.function_payload, executor_type=p.executor_type,
        executor=p.executor, function_arguments=p.function_arguments,
        inputs=tuple(_file_from_proto(f) for f in p.inputs),
        outputs=tuple(_file_from_proto(f) for f in p.outputs))
