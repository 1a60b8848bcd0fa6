"""gRPC adapter for the internal scheduler protocol used by execution workers.

Only callers whose mutual-TLS certificate (issued by the platform CA) names
the ``execution`` service may call it: the inbound policy of spec Appendix A.
"""

from __future__ import annotations

import functools

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from google.protobuf import empty_pb2

from ..config import Limits
from ..errors import Code, ServiceError
from ..keys import DEFAULT_INBOUND_POLICY, KeysError, PeerNotAllowedError, services_of
from ..rpc import staged_to_proto
from ..rpc._gen import confide_v1_pb2 as v1
from ..rpc._gen import confide_v1_pb2_grpc as v1_grpc
from ..rpc._gen import teaclave_common_pb2 as common
from ..services._records import TaskResult
from ..services.scheduler import Scheduler
from ..staged import StagedTask
from ._serving import inline

__all__ = ["add_scheduler_servicer", "caller_services"]

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


#: The largest receipt kept (crypto.receipts.MAX_RECEIPT_BYTES); a bigger one is dropped.
_MAX_RECEIPT_BYTES = 1024 * 1024


def _result(report: v1.UpdateTaskResultRequest, limits: Limits) -> TaskResult:
    result = _outcome(report, limits)
    if 0 < len(report.receipt) <= _MAX_RECEIPT_BYTES:
        result.receipt = report.receipt
    return result


def _outcome(report: v1.UpdateTaskResultRequest, limits: Limits) -> TaskResult:
    r = report.result
    which = r.WhichOneof("result")
    if which == "Ok":
        ok = r.Ok
        if len(ok.return_value) > limits.max_return_value_bytes or len(ok.log) > \
                limits.max_log_lines or len(ok.tags_map) > limits.max_list_items or \
                sum(len(line.encode("utf-8", "surrogatepass")) for line in ok.log) > \
                limits.max_log_bytes:
            return TaskResult.err("function result exceeds the platform's limits")
        return TaskResult(ok=True, return_value=ok.return_value, tags_map=dict(ok.tags_map),
                          log=list(ok.log))
    if which == "Err":
        # A failed run's partial log (TaskFailure has no log field), within the same caps.
        log = list(report.failure_log[:limits.max_log_lines])
        return TaskResult.err(r.Err.reason[:4096], log=log, detail=report.failure_detail[:4096])
    raise ServiceError(Code.INVALID_ARGUMENT, "task result is empty")


def _pulled(staged: StagedTask | None) -> v1.PullTaskResponse:
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
        self._s.admit(executor_id)

    async def PullTask(self, r: v1.PullTaskRequest, c: grpc.aio.ServicerContext
                       ) -> v1.PullTaskResponse:
        self._check(c, r.executor_id)
        return _pulled(await self._s.pull(r.executor_id, self._wait_s(r.wait_ms),
                                          active=lambda: not c.done()))

    async def ReportAndPull(self, r: v1.ReportAndPullRequest, c: grpc.aio.ServicerContext
                            ) -> v1.PullTaskResponse:
        self._check(c, r.report.executor_id)
        return _pulled(await self._s.report_and_pull(
            r.report.executor_id, r.report.task_id, _result(r.report, self._limits),
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
        self._s.report(r.executor_id, r.task_id, _result(r, self._limits))
        return empty_pb2.Empty()


def add_scheduler_servicer(scheduler: Scheduler, limits: Limits, server: grpc.aio.Server
                           ) -> tuple[str, ...]:
    """Serve the scheduler's worker protocol; its full service name."""
    v1_grpc.add_SchedulerServicer_to_server(_Scheduler(scheduler, limits), server)
    return (v1.DESCRIPTOR.services_by_name["Scheduler"].full_name,)
