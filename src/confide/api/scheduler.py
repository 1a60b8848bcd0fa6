"""gRPC adapter for the internal scheduler protocol used by execution workers.

grpc verified the caller's mutual-TLS certificate against the platform CA (the
only root). Each call then passes, in order:

1. the node is not revoked (``NodeRevocations``) -> else UNAUTHENTICATED;
2. a role its certificate names may call this RPC (``INTERNAL_RPC_POLICY``,
   keys/_roles.py) -> else PERMISSION_DENIED naming the role and the RPC;
3. the executor id in the request is the caller's own node id -> else
   PERMISSION_DENIED (one worker cannot pull or report for another).

Every refusal is logged and audited (``user`` = ``node:<id>``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Protocol

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from google.protobuf import empty_pb2

from ..config import Limits
from ..errors import Code, ServiceError
from ..keys import KeysError, PeerNotAllowedError, check_rpc, services_of
from ..rpc import staged_to_proto
from ..rpc._gen import confide_v1_pb2 as v1
from ..rpc._gen import confide_v1_pb2_grpc as v1_grpc
from ..rpc._gen import teaclave_common_pb2 as common
from ..services._records import TaskResult
from ..services.scheduler import Scheduler
from ..staged import StagedTask
from ._serving import inline

__all__ = ["RefusalAudit", "Revoked", "add_scheduler_servicer", "caller_services"]

_log = logging.getLogger("confide.scheduler.inbound")
_SERVICE = "/" + v1.DESCRIPTOR.services_by_name["Scheduler"].full_name + "/"

#: ``(node id, peer, refusal)``: records a refused internal call (the audit log).
RefusalAudit = Callable[[str, str, str], None]


class Revoked(Protocol):
    """What the adapter asks of the revocation list."""

    def covering(self, node_id: str) -> object | None: ...


def caller_services(context: grpc.aio.ServicerContext) -> frozenset[str]:
    """Service names in the client certificate grpc verified against the platform CA."""
    return _peer_in(tuple((context.auth_context() or {}).get("x509_pem_cert") or ()))[0]


def _caller(context: grpc.aio.ServicerContext) -> tuple[frozenset[str], str]:
    return _peer_in(tuple((context.auth_context() or {}).get("x509_pem_cert") or ()))


@functools.lru_cache(maxsize=256)
def _peer_in(pems: tuple[bytes, ...]) -> tuple[frozenset[str], str]:
    """Roles and node id (subject CN) of the verified client certificate.

    Parsing is the cost of every worker call; the same few certificates recur."""
    names: set[str] = set()
    node_id = ""
    for pem in pems:
        try:
            cert = x509.load_pem_x509_certificate(pem)
            names |= services_of(cert.public_bytes(serialization.Encoding.DER))
            cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            node_id = node_id or (str(cns[0].value) if cns else "")
        except (ValueError, KeysError):
            continue
    return frozenset(names), node_id


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
    def __init__(self, scheduler: Scheduler, limits: Limits, revoked: Revoked | None,
                 audit: RefusalAudit | None) -> None:
        self._s = scheduler
        self._limits = limits
        self._revoked = revoked
        self._audit = audit

    def _refuse(self, context: grpc.aio.ServicerContext, node_id: str, code: Code,
                message: str) -> ServiceError:
        _log.warning("refused %s from node %r at %s: %s", code.name, node_id[:128],
                     context.peer(), message)
        if self._audit is not None:
            self._audit(node_id[:128], context.peer(), message)
        return ServiceError(code, message)

    def _check(self, context: grpc.aio.ServicerContext, executor_id: str, rpc: str) -> None:
        roles, node_id = _caller(context)
        method = _SERVICE + rpc
        if self._revoked is not None and node_id:
            if self._revoked.covering(node_id) is not None:
                raise self._refuse(context, node_id, Code.UNAUTHENTICATED,
                                   f"node {node_id} is revoked")
        try:
            check_rpc(method, roles)
        except PeerNotAllowedError as e:
            raise self._refuse(context, node_id, Code.PERMISSION_DENIED,
                               str(e).removeprefix("peer-not-allowed: ")) from e
        if not executor_id or len(executor_id) > 128:
            raise ServiceError(Code.INVALID_ARGUMENT, "invalid executor id")
        if executor_id != node_id:
            raise self._refuse(context, node_id, Code.PERMISSION_DENIED,
                               f"executor id {executor_id[:128]} is not the caller's "
                               f"({node_id})")
        self._s.admit(executor_id)

    async def PullTask(self, r: v1.PullTaskRequest, c: grpc.aio.ServicerContext
                       ) -> v1.PullTaskResponse:
        self._check(c, r.executor_id, "PullTask")
        return _pulled(await self._s.pull(r.executor_id, self._wait_s(r.wait_ms),
                                          active=lambda: not c.done()))

    async def ReportAndPull(self, r: v1.ReportAndPullRequest, c: grpc.aio.ServicerContext
                            ) -> v1.PullTaskResponse:
        self._check(c, r.report.executor_id, "ReportAndPull")
        return _pulled(await self._s.report_and_pull(
            r.report.executor_id, r.report.task_id, _result(r.report, self._limits),
            self._wait_s(r.wait_ms), active=lambda: not c.done()))

    def _wait_s(self, wait_ms: int) -> float:
        return min(wait_ms, self._limits.max_pull_wait_ms) / 1000

    def Heartbeat(self, r: v1.HeartbeatRequest, c: grpc.aio.ServicerContext
                  ) -> v1.HeartbeatResponse:
        self._check(c, r.executor_id, "Heartbeat")
        wait = self._s.executor_timeout_s / 3
        command = self._s.heartbeat(r.executor_id, r.task_id, wait)
        return v1.HeartbeatResponse(command=common.ExecutorCommand.ValueType(command))

    @inline
    def UpdateTaskResult(self, r: v1.UpdateTaskResultRequest, c: grpc.aio.ServicerContext
                         ) -> empty_pb2.Empty:
        self._check(c, r.executor_id, "UpdateTaskResult")
        self._s.report(r.executor_id, r.task_id, _result(r, self._limits))
        return empty_pb2.Empty()


def add_scheduler_servicer(scheduler: Scheduler, limits: Limits, server: grpc.aio.Server, *,
                           revoked: Revoked | None = None, audit: RefusalAudit | None = None
                           ) -> tuple[str, ...]:
    """Serve the scheduler's worker protocol; its full service name.

    ``revoked``: the revocation list checked on every call; ``audit``: called for
    every refused call (node id, peer, reason)."""
    v1_grpc.add_SchedulerServicer_to_server(_Scheduler(scheduler, limits, revoked, audit),
                                            server)
    return (v1.DESCRIPTOR.services_by_name["Scheduler"].full_name,)
