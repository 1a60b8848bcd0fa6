"""gRPC adapter for the internal scheduler protocol used by execution workers.

Only callers whose mutual-TLS certificate (issued by the platform CA) names
the ``execution`` service may call it: the inbound policy of spec Appendix A.
"""

from __future__ import annotations

import functools
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from google.protobuf import empty_pb2

from ..config import Limits
from ..errors import Code, ServiceError
from ..keys import DEFAULT_INBOUND_POLICY, KeysError, PeerNotAllowedError, services_of
from ..rpc import inline
from ..rpc._gen import confide_v1_pb2 as v1
from ..rpc._gen import confide_v1_pb2_grpc as v1_grpc
from ..rpc._gen import teaclave_common_pb2 as common
from ..services._records import TaskResult
from ..services.scheduler import Scheduler

__all__ = ["add_scheduler_servicer", "caller_services", "staged_from_proto", "staged_to_proto"]

def caller_services(context: grpc.aio.ServicerContext) -> frozenset[str]:
    """Service names in the client certificate grpc verified against the platform CA."""
    return _services_in(tuple((context.auth_context() or {}).get("x509_pem_cert") or ()))


@functools.lru_cache(maxsize=256)
def _services_in(pems: tuple[bytes, ...]) -> frozenset[str]:
    """Parsing is the cost of every worker call; the same few certificates recur."""
    names: set[str] = set()
    for pem in pems:
        try:
            der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
            names |= services_of(der)
        except (ValueError, KeysError):
            continue
    return frozenset(names)


def _file(d: dict[str, Any]) -> v1.StagedFile:
    return v1.StagedFile(name=d["name"], url=d["url"], cmac=d["cmac"],
                         crypto_info=common.FileCryptoInfo(schema=d["schema"], key=d["key"],
                                                           iv=d["iv"]))


def staged_to_proto(s: dict[str, Any]) -> v1.StagedTask:
    return v1.StagedTask(
        task_id=s["task_id"], function_id=s["function_id"], function_name=s["function_name"],
        function_payload=s["function_payload"], executor_type=s["executor_type"],
        executor=s["executor"], function_arguments=s["function_arguments"],
        inputs=[_file(f) for f in s["inputs"]], outputs=[_file(f) for f in s["outputs"]])


def staged_from_proto(p: v1.StagedTask) -> dict[str, Any]:
    def f(x: v1.StagedFile) -> dict[str, Any]:
        return {"name": x.name, "url": x.url, "cmac": x.cmac, "schema": x.crypto_info.schema,
                "key": x.crypto_info.key, "iv": x.crypto_info.iv}
    return {"task_id": p.task_id, "function_id": p.function_id,
            "function_name": p.function_name, "function_payload": p.function_payload,
            "executor_type": p.executor_type, "executor": p.executor,
            "function_arguments": p.function_arguments,
            "inputs": [f(x) for x in p.inputs], "outputs": [f(x) for x in p.outputs]}


def _result(r: common.TaskResult, limits: Limits) -> TaskResult:
    which = r.WhichOneof("result")
    if which == "Ok":
        ok = r.Ok
        if len(ok.return_value) > limits.max_return_value_bytes or len(ok.log) > \
                limits.max_log_lines or len(ok.tags_map) > limits.max_list_items:
            return TaskResult.err("function result exceeds the platform's limits")
        return TaskResult(ok=True, return_value=ok.return_value, tags_map=dict(ok.tags_map),
                          log=list(ok.log))
    if which == "Err":
        return TaskResult.err(r.Err.reason[:4096])
    raise ServiceError(Code.INVALID_ARGUMENT, "task result is empty")


def _pulled(staged: dict[str, Any] | None) -> v1.PullTaskResponse:
    if staged is None:
        return v1.PullTaskResponse(has_task=False)
    return v1.PullTaskResponse(has_task=True, task=staged_to_proto(staged))


class _Scheduler(v1_grpc.SchedulerServicer):
    def __init__(self, scheduler: Scheduler, limits: Limits) -> None:
        self._s = scheduler
        self._limits = limits

    def _check(self, context: grpc.aio.ServicerContext, executor_id: str) -> None:
        try:
            DEFAULT_INBOUND_POLICY.check("scheduler", caller_services(context))
        except PeerNotAllowedError as e:
            raise ServiceError.permission_denied() from e
        if not executor_id or len(executor_id) > 128:
            raise ServiceError(Code.INVALID_ARGUMENT, "invalid executor id")

    async def PullTask(self, r: v1.PullTaskRequest, c: grpc.aio.ServicerContext
                       ) -> v1.PullTaskResponse:
        self._check(c, r.executor_id)
        return _pulled(await self._s.pull(r.executor_id, self._wait_s(r.wait_ms),
                                          active=lambda: not c.done()))

    async def ReportAndPull(self, r: v1.ReportAndPullRequest, c: grpc.aio.ServicerContext
                            ) -> v1.PullTaskResponse:
        self._check(c, r.report.executor_id)
        return _pulled(await self._s.report_and_pull(
            r.report.executor_id, r.report.task_id, _result(r.report.result, self._limits),
            self._wait_s(r.wait_ms), active=lambda: not c.done()))

    def _wait_s(self, wait_ms: int) -> float:
        return min(wait_ms, self._limits.max_pull_wait_ms) / 1000

    def Heartbeat(self, r: v1.HeartbeatRequest, c: grpc.aio.ServicerContext
                  ) -> v1.HeartbeatResponse:
        self._check(c, r.executor_id)
        wait = self._s.executor_timeout_s / 3
        command = self._s.heartbeat(r.executor_id, r.task_id, wait)
        return v1.HeartbeatResponse(command=common.ExecutorCommand.ValueType(command))

    @inline
    def UpdateTaskResult(self, r: v1.UpdateTaskResultRequest, c: grpc.aio.ServicerContext
                         ) -> empty_pb2.Empty:
        self._check(c, r.executor_id)
        self._s.report(r.executor_id, r.task_id, _result(r.result, self._limits))
        return empty_pb2.Empty()


def add_scheduler_servicer(scheduler: Scheduler, limits: Limits, server: grpc.aio.Server
                           ) -> tuple[str, ...]:
    """Serve the scheduler's worker protocol; its full service name."""
    v1_grpc.add_SchedulerServicer_to_server(_Scheduler(scheduler, limits), server)
    return (v1.DESCRIPTOR.services_by_name["Scheduler"].full_name,)
