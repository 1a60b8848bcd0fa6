"""gRPC adapter for Teaclave's frontend API and confide.v1's client extensions."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import grpc
from google.protobuf import empty_pb2

from ..attestation.tls import AttestedCertificate
from ..errors import Code, ServiceError
from ..rpc._gen import confide_v1_pb2 as v1
from ..rpc._gen import confide_v1_pb2_grpc as v1_grpc
from ..rpc._gen import teaclave_common_pb2 as common
from ..rpc._gen import teaclave_frontend_service_pb2 as pb
from ..rpc._gen import teaclave_frontend_service_pb2_grpc as pb_grpc
from ..services._idempotency import METADATA_KEY, IdempotencyKey, parse_idempotency_key
from ..services._identity import Principal, RoleKind
from ..services._records import (
    ArgumentSpec,
    CryptoInfo,
    DataSpec,
    FunctionRecord,
    TaskRecord,
    parse_id,
)
from ..services.audit import (
    AuditChainBroken,
    AuditEntry,
    AuditLog,
    QuerySyntaxError,
    Subjects,
    TreeHead,
    rfc3339,
)
from ..services.blobstore import BlobStore, BlobStoreError, validate_object_name
from ..services.frontend import Frontend, peer_ip
from ..services.management import (
    CreatedTask,
    DataAssignment,
    DataOwners,
    FunctionLists,
    FunctionSpecInput,
    Management,
    PolicyRequest,
    ReviewedFile,
    SigningKey,
    TaskReview,
)
from ..services.scheduler import Scheduler
from ._serving import inline, metadata_value

__all__ = ["add_frontend_servicers", "task_response"]

T = TypeVar("T")


def _crypto(msg: common.FileCryptoInfo, present: bool) -> CryptoInfo | None:
    return CryptoInfo(msg.schema, msg.key, msg.iv) if present else None


def _spec(r: Any, *, teaclave_api: bool = False) -> FunctionSpecInput:
    return FunctionSpecInput(
        name=r.name, description=r.description, executor_type=r.executor_type, public=r.public,
        payload=r.payload,
        arguments=[ArgumentSpec(a.key, a.default_value, a.allow_overwrite) for a in r.arguments],
        inputs=[DataSpec(i.name, i.description, i.optional) for i in r.inputs],
        outputs=[DataSpec(o.name, o.description, o.optional) for o in r.outputs],
        user_allowlist=list(r.user_allowlist), usage_quota=r.usage_quota,
        teaclave_api=teaclave_api,
    )


def _arguments(f: FunctionRecord) -> list[pb.FunctionArgument]:
    return [pb.FunctionArgument(key=a.key, default_value=a.default_value,
                                allow_overwrite=a.allow_overwrite) for a in f.arguments]


def _inputs(f: FunctionRecord) -> list[pb.FunctionInput]:
    return [pb.FunctionInput(name=i.name, description=i.description, optional=i.optional)
            for i in f.inputs]


def _outputs(f: FunctionRecord) -> list[pb.FunctionOutput]:
    return [pb.FunctionOutput(name=o.name, description=o.description, optional=o.optional)
            for o in f.outputs]


def _function_response(f: FunctionRecord) -> pb.GetFunctionResponse:
    return pb.GetFunctionResponse(
        name=f.name, description=f.description, executor_type=f.executor_type, owner=f.owner,
        payload=f.payload, public=f.public, arguments=_arguments(f), inputs=_inputs(f),
        outputs=_outputs(f), user_allowlist=f.user_allowlist,
    )


def task_response(t: TaskRecord) -> pb.GetTaskResponse:
    """GetTask's message; repeated fields sorted (spec Q30)."""
    result = common.TaskResult()
    if t.result is not None:
        if t.result.ok:
            result.Ok.CopyFrom(common.TaskOutputs(
                return_value=t.result.return_value, tags_map=t.result.tags_map,
                log=t.result.log))
        else:
            result.Err.CopyFrom(common.TaskFailure(reason=t.result.reason))
    return pb.GetTaskResponse(
        task_id=t.id, creator=t.creator, function_id=t.function_id,
        function_owner=t.function_owner, function_arguments=t.function_arguments,
        inputs_ownership=[pb.OwnerList(data_name=n, uids=sorted(u))
                          for n, u in sorted(t.inputs_ownership.items())],
        outputs_ownership=[pb.OwnerList(data_name=n, uids=sorted(u))
                           for n, u in sorted(t.outputs_ownership.items())],
        participants=sorted(t.participants), approved_users=sorted(t.approved_users),
        assigned_inputs=[pb.DataMap(data_name=n, data_id=i)
                         for n, i in sorted(t.assigned_inputs.items())],
        assigned_outputs=[pb.DataMap(data_name=n, data_id=i)
                          for n, i in sorted(t.assigned_outputs.items())],
        status=common.TaskStatus.ValueType(int(t.status)), result=result,
    )


_CODE_REVIEW: dict[int, str] = {v1.CODE_REVIEW_OPEN: "open",
                                v1.CODE_REVIEW_CONFIDENTIAL: "confidential"}
_CODE_REVIEW_WIRE = {name: v1.CodeReview.ValueType(value) for value, name in _CODE_REVIEW.items()}


def _code_review(value: int, *, default: str | None) -> str:
    """A CodeReview enum off the wire; UNSPECIFIED is ``default`` (None: refused)."""
    mode = default if value == v1.CODE_REVIEW_UNSPECIFIED else _CODE_REVIEW.get(int(value))
    if mode is None:
        raise ServiceError(Code.INVALID_ARGUMENT, f"invalid code review mode: {value}")
    return mode


def _reviewed_files(files: list[ReviewedFile]) -> list[v1.ReviewedFile]:
    return [v1.ReviewedFile(data_name=f.data_name, owners=f.owners, data_id=f.data_id,
                            cmac=f.cmac) for f in files]


def review_response(r: TaskReview) -> v1.TaskReview:
    """ReviewTask's message: the payload only where the service left it visible."""
    t = r.task
    msg = v1.TaskReview(
        task=task_response(t), executor=t.executor, inputs=_reviewed_files(r.inputs),
        outputs=_reviewed_files(r.outputs), waiting_for=t.waiting_for(),
        rejections=[v1.Rejection(user_id=u, reason=why) for u, why in sorted(
            t.rejections.items())],
        log=t.result.log if t.result is not None else [],
        failure_detail=t.result.detail if t.result is not None else "")
    f = r.function
    if f is not None:
        msg.function.CopyFrom(v1.ReviewedFunction(
            function_id=f.id, name=f.name, description=f.description, owner=f.owner,
            executor_type=f.executor_type, public=f.public,
            code_review=_CODE_REVIEW_WIRE.get(f.code_review, v1.CODE_REVIEW_CONFIDENTIAL),
            payload_sha256=r.payload_sha256, payload_visible=r.payload_visible,
            payload=f.payload if r.payload_visible else b"", payload_size=r.payload_size,
            arguments=_arguments(f), inputs=_inputs(f), outputs=_outputs(f)))
    return msg


def _owner_lists(items: Iterable[pb.OwnerList]) -> list[DataOwners]:
    return [DataOwners(o.data_name, list(o.uids)) for o in items]


def _data_maps(items: Iterable[pb.DataMap]) -> list[DataAssignment]:
    return [DataAssignment(d.data_name, d.data_id) for d in items]


def _caller(context: grpc.aio.ServicerContext) -> tuple[str | None, str | None, bytes]:
    """The caller's user id, token and address, as the frontend pipeline takes them."""
    return metadata_value(context, "id"), metadata_value(context, "token"), peer_ip(context.peer())


def _about(*, tasks: Iterable[str] = (), functions: Iterable[str] = (),
           files: Iterable[str] = ()) -> Subjects:
    """The ids a request names, canonical; ids that do not parse name no record."""
    def canon(ids: Iterable[str]) -> list[str]:
        return [c for c in (parse_id(i) for i in ids) if c is not None]
    return Subjects.of(tasks=canon(tasks), functions=canon(functions), files=canon(files))


class _Base:
    def __init__(self, frontend: Frontend, management: Management) -> None:
        self._f = frontend
        self._m = management

    def _run(self, api: str, context: grpc.aio.ServicerContext, fn: Callable[[Principal], T],
             about: Subjects | None = None, created: str | None = None) -> T:
        return self._f.run(api, *_caller(context), fn, about, created)

    def _create(self, api: str, context: grpc.aio.ServicerContext, request: Any,
                make: Callable[[Principal, IdempotencyKey | None], str], created: str,
                about: Subjects | None = None,
                replayed: Callable[[Principal, str], None] | None = None, *,
                replays_first: bool = False) -> str:
        """A create: with an ``idempotency-key`` header, a retry returns the first id
        (after ``replayed(who, id)``, when given, instead of ``make``).

        ``replays_first``: ``make`` checks the key before validating anything that
        may have changed since the first attempt (in its own transaction), so
        no read of the key of its own is needed here.
        """
        ctx = self._m.ctx

        def run(who: Principal) -> str:
            header = parse_idempotency_key(metadata_value(context, METADATA_KEY), ctx.limits)
            if header is None:
                return make(who, None)
            key = IdempotencyKey.of(who.user_id, header, api,
                                    request.SerializeToString(deterministic=True), ctx.limits,
                                    ctx.clock)
            if replays_first:
                return make(who, key)
            prior = key.lookup(ctx.db)  # before validating again what was done already
            if prior is None:
                return make(who, key)
            if replayed is not None:
                replayed(who, prior)
            return prior

        return self._run(api, context, run, about, created)


class _Teaclave(_Base, pb_grpc.TeaclaveFrontendServicer):
    def __init__(self, frontend: Frontend, management: Management, scheduler: Scheduler,
                 audit: AuditLog) -> None:
        super().__init__(frontend, management)
        self._sched = scheduler
        self._audit = audit

    # -- files -------------------------------------------------------------
    def RegisterInputFile(self, r: pb.RegisterInputFileRequest, c: grpc.aio.ServicerContext
                          ) -> pb.RegisterInputFileResponse:
        data_id = self._create("register_input_file", c, r, lambda who, key: (
            self._m.files.register_input(
                who, r.url, r.cmac, _crypto(r.crypto_info, r.HasField("crypto_info")),
                idem=key)), created="file")
        return pb.RegisterInputFileResponse(data_id=data_id)

    def RegisterOutputFile(self, r: pb.RegisterOutputFileRequest, c: grpc.aio.ServicerContext
                           ) -> pb.RegisterOutputFileResponse:
        data_id = self._create("register_output_file", c, r, lambda who, key: (
            self._m.files.register_output(
                who, r.url, _crypto(r.crypto_info, r.HasField("crypto_info")), idem=key)),
            created="file")
        return pb.RegisterOutputFileResponse(data_id=data_id)

    def UpdateInputFile(self, r: pb.UpdateInputFileRequest, c: grpc.aio.ServicerContext
                        ) -> pb.UpdateInputFileResponse:
        data_id = self._run("update_input_file", c, lambda who: self._m.files.update(
            who, r.data_id, r.url, kind="input"), _about(files=[r.data_id]), "file")
        return pb.UpdateInputFileResponse(data_id=data_id)

    def UpdateOutputFile(self, r: pb.UpdateOutputFileRequest, c: grpc.aio.ServicerContext
                         ) -> pb.UpdateOutputFileResponse:
        data_id = self._run("update_output_file", c, lambda who: self._m.files.update(
            who, r.data_id, r.url, kind="output"), _about(files=[r.data_id]), "file")
        return pb.UpdateOutputFileResponse(data_id=data_id)

    def RegisterFusionOutput(self, r: pb.RegisterFusionOutputRequest, c: grpc.aio.ServicerContext
                             ) -> pb.RegisterFusionOutputResponse:
        data_id = self._create("register_fusion_output", c, r,
                               lambda who, key: self._m.files.register_fusion_output(
                                   who, list(r.owner_list), idem=key), created="file")
        return pb.RegisterFusionOutputResponse(data_id=data_id)

    def RegisterInputFromOutput(self, r: pb.RegisterInputFromOutputRequest,
                                c: grpc.aio.ServicerContext) -> pb.RegisterInputFromOutputResponse:
        data_id = self._run("register_input_from_output", c,
                            lambda who: self._m.files.register_input_from_output(who, r.data_id),
                            _about(files=[r.data_id]), "file")
        return pb.RegisterInputFromOutputResponse(data_id=data_id)

    def GetOutputFile(self, r: pb.GetOutputFileRequest, c: grpc.aio.ServicerContext
                      ) -> pb.GetOutputFileResponse:
        f = self._run("get_output_file", c,
                      lambda who: self._m.files.get(who, r.data_id, kind="output"),
                      _about(files=[r.data_id]))
        return pb.GetOutputFileResponse(owner=sorted(f.owners), cmac=f.cmac or b"")

    def GetInputFile(self, r: pb.GetInputFileRequest, c: grpc.aio.ServicerContext
                     ) -> pb.GetInputFileResponse:
        f = self._run("get_input_file", c,
                      lambda who: self._m.files.get(who, r.data_id, kind="input"),
                      _about(files=[r.data_id]))
        return pb.GetInputFileResponse(owner=sorted(f.owners), cmac=f.cmac or b"")

    # -- functions ---------------------------------------------------------
    def RegisterFunction(self, r: pb.RegisterFunctionRequest, c: grpc.aio.ServicerContext
                         ) -> pb.RegisterFunctionResponse:
        fid = self._create("register_function", c, r,
                           lambda who, key: self._m.functions.register(
                               who, _spec(r, teaclave_api=True), idem=key),
                           created="function")
        return pb.RegisterFunctionResponse(function_id=fid)

    def UpdateFunction(self, r: pb.UpdateFunctionRequest, c: grpc.aio.ServicerContext
                       ) -> pb.UpdateFunctionResponse:
        fid = self._run("update_function", c,
                        lambda who: self._m.functions.update(
                            who, r.function_id, _spec(r, teaclave_api=True)),
                        _about(functions=[r.function_id]))
        return pb.UpdateFunctionResponse(function_id=fid)

    def GetFunction(self, r: pb.GetFunctionRequest, c: grpc.aio.ServicerContext
                    ) -> pb.GetFunctionResponse:
        f = self._run("get_function", c, lambda who: self._m.functions.get(who, r.function_id),
                      _about(functions=[r.function_id]))
        return _function_response(f)

    def GetFunctionUsageStats(self, r: pb.GetFunctionUsageStatsRequest,
                              c: grpc.aio.ServicerContext) -> pb.GetFunctionUsageStatsResponse:
        quota, usage = self._run("get_function_usage_stats", c,
                                 lambda who: self._m.functions.usage_stats(who, r.function_id),
                                 _about(functions=[r.function_id]))
        return pb.GetFunctionUsageStatsResponse(function_quota=quota, current_usage=usage)

    def ListFunctions(self, r: pb.ListFunctionsRequest, c: grpc.aio.ServicerContext
                      ) -> pb.ListFunctionsResponse:
        def run(who: Principal) -> FunctionLists:
            role = who.role if r.user_id == who.user_id else self._m.role_of(r.user_id)
            attribute = role.attribute if role is not None and role.is_data_owner_like else None
            return self._m.functions.list(who, r.user_id, attribute)

        registered, allowed = self._run("list_functions", c, run)
        return pb.ListFunctionsResponse(registered_functions=registered,
                                        allowed_functions=allowed)

    def DeleteFunction(self, r: pb.DeleteFunctionRequest, c: grpc.aio.ServicerContext
                       ) -> empty_pb2.Empty:
        self._run("delete_function", c, lambda who: self._m.functions.delete(who, r.function_id),
                  _about(functions=[r.function_id]))
        return empty_pb2.Empty()

    def DisableFunction(self, r: pb.DisableFunctionRequest, c: grpc.aio.ServicerContext
                        ) -> empty_pb2.Empty:
        self._run("disable_function", c,
                  lambda who: self._m.functions.disable(who, r.function_id),
                  _about(functions=[r.function_id]))
        return empty_pb2.Empty()

    # -- tasks -------------------------------------------------------------
    @inline
    def CreateTask(self, r: pb.CreateTaskRequest, c: grpc.aio.ServicerContext
                   ) -> pb.CreateTaskResponse:
        tid = self._create("create_task", c, r, lambda who, key: self._m.tasks.create(
            who, r.function_id, r.function_arguments, r.executor,
            _owner_lists(r.inputs_ownership), _owner_lists(r.outputs_ownership), idem=key),
            "task", _about(functions=[r.function_id]), replays_first=True)
        return pb.CreateTaskResponse(task_id=tid)

    @inline
    def GetTask(self, r: pb.GetTaskRequest, c: grpc.aio.ServicerContext) -> pb.GetTaskResponse:
        return task_response(self._run("get_task", c,
                                       lambda who: self._m.tasks.get(who, r.task_id),
                                       _about(tasks=[r.task_id])))

    @inline
    def AssignData(self, r: pb.AssignDataRequest, c: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        self._run("assign_data", c, lambda who: self._m.tasks.assign(
            who, r.task_id, _data_maps(r.inputs), _data_maps(r.outputs)), _about(
            tasks=[r.task_id], files=[d.data_id for d in (*r.inputs, *r.outputs)]))
        return empty_pb2.Empty()

    @inline
    def ApproveTask(self, r: pb.ApproveTaskRequest, c: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        self._run("approve_task", c, lambda who: self._m.tasks.approve(who, r.task_id),
                  _about(tasks=[r.task_id]))
        return empty_pb2.Empty()

    @inline
    def InvokeTask(self, r: pb.InvokeTaskRequest, c: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        self._run("invoke_task", c,
                  lambda who: self._m.tasks.invoke(who, r.task_id, self._sched.stage),
                  _about(tasks=[r.task_id]))
        return empty_pb2.Empty()

    @inline
    def CancelTask(self, r: pb.CancelTaskRequest, c: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        self._run("cancel_task", c,
                  lambda who: self._m.tasks.cancel(who, r.task_id, self._sched.unstage),
                  _about(tasks=[r.task_id]))
        return empty_pb2.Empty()

    # -- audit -------------------------------------------------------------
    def QueryAuditLogs(self, r: pb.QueryAuditLogsRequest, c: grpc.aio.ServicerContext
                       ) -> pb.QueryAuditLogsResponse:
        entries = self._run("query_audit_logs", c, lambda who: self._query(who, r))
        return pb.QueryAuditLogsResponse(logs=[
            common.Entry(microsecond=e.microsecond, ip=e.ip, user=e.user, message=e.message,
                         result=e.result) for e in entries])

    def _query(self, who: Principal, r: pb.QueryAuditLogsRequest) -> list[AuditEntry]:
        if who.role.kind is not RoleKind.PLATFORM_ADMIN:  # checked in both layers
            raise ServiceError.permission_denied()
        limits = self._m.ctx.limits
        if len(r.query) > limits.max_audit_query_chars:
            raise ServiceError(Code.OUT_OF_RANGE, "audit query too long")
        try:
            return self._audit.query(r.query, min(r.limit, limits.max_audit_limit))
        except QuerySyntaxError as e:
            raise ServiceError.unknown(f"audit log error, reason: {e}") from e


class _Confide(_Base, v1_grpc.ConfideFrontendServicer):
    def __init__(self, frontend: Frontend, management: Management, scheduler: Scheduler,
                 blobs: BlobStore | None, audit: AuditLog,
                 audit_signer: Callable[[], AttestedCertificate] | None) -> None:
        super().__init__(frontend, management)
        self._sched = scheduler
        self._blobs = blobs
        self._audit = audit
        self._audit_signer = audit_signer

    def QueryParticipantAudit(self, r: v1.ParticipantAuditRequest, c: grpc.aio.ServicerContext
                              ) -> v1.ParticipantAuditResponse:
        limits = self._m.ctx.limits
        limit = min(r.limit or 100, limits.max_audit_limit)

        def run(who: Principal) -> v1.ParticipantAuditResponse:
            if self._audit_signer is None:
                raise ServiceError(Code.UNIMPLEMENTED, "this server signs no audit tree heads")
            task = None
            if r.task_id:
                task = parse_id(r.task_id)
                if task is None:
                    raise ServiceError(Code.INVALID_ARGUMENT, "invalid task id")
            try:
                view = self._audit.participant_view(self._m.audit_visibility(who), limit,
                                                    task=task, known_size=r.known_tree_size)
            except AuditChainBroken as e:
                raise ServiceError(Code.DATA_LOSS, f"the audit log does not verify: {e}") from e
            signer = self._audit_signer()  # one certificate for both the key and the answer
            head = TreeHead(view.size, view.root, int(self._m.ctx.clock() * 1_000_000))
            return v1.ParticipantAuditResponse(
                entries=[v1.ParticipantAuditEntry(
                    seq=e.seq, microsecond=e.microsecond, time=rfc3339(e.microsecond), ip=e.ip,
                    user=e.user, message=e.message, result=e.result, actor=e.actor,
                    task_ids=e.subjects.tasks, function_ids=e.subjects.functions,
                    file_ids=e.subjects.files, salt=e.salt, inclusion_proof=proof)
                    for e, proof in view.entries],
                tree_head=v1.AuditTreeHead(
                    tree_size=head.size, root=head.root, issued_microsecond=head.issued_us,
                    signature=head.sign(signer.private_key),
                    certificate=signer.certificate_der),
                consistency_proof=view.consistency)

        return self._run("query_participant_audit", c, run, _about(tasks=[r.task_id]))

    def CreateBlobUrls(self, r: v1.CreateBlobUrlsRequest, c: grpc.aio.ServicerContext
                       ) -> v1.CreateBlobUrlsResponse:
        def run(_who: Principal) -> v1.CreateBlobUrlsResponse:
            if self._blobs is None:
                raise ServiceError(Code.UNIMPLEMENTED, "this server runs no blob store")
            limits = self._m.ctx.limits
            name = f"{uuid.uuid4().hex}/{r.file_name or 'data'}"
            try:
                validate_object_name(name, limits.max_blob_name_chars)
            except BlobStoreError as e:
                raise ServiceError(Code.INVALID_ARGUMENT, f"invalid file name: {e}") from e
            ttl = min(r.ttl_s or 3600, limits.max_blob_url_ttl_s)
            expires = int(self._m.ctx.clock()) + ttl
            return v1.CreateBlobUrlsResponse(
                object_name=name, put_url=self._blobs.presign(name, "PUT", expires),
                get_url=self._blobs.presign(name, "GET", expires),
                rw_url=self._blobs.presign(name, "RW", expires), expires_at=expires)

        return self._run("create_blob_urls", c, run)

    def RegisterFunction(self, r: v1.RegisterFunctionRequest, c: grpc.aio.ServicerContext
                         ) -> pb.RegisterFunctionResponse:
        mode = _code_review(r.code_review, default="open")
        fid = self._create("register_function", c, r, lambda who, key: (
            self._m.functions.register(who, _spec(r.function), mode, idem=key)),
            created="function")
        return pb.RegisterFunctionResponse(function_id=fid)

    def SetCodeReview(self, r: v1.SetCodeReviewRequest, c: grpc.aio.ServicerContext
                      ) -> empty_pb2.Empty:
        mode = _code_review(r.code_review, default=None)
        self._run("set_code_review", c,
                  lambda who: self._m.functions.set_code_review(who, r.function_id, mode),
                  _about(functions=[r.function_id]))
        return empty_pb2.Empty()

    def RegisterInputFile(self, r: v1.RegisterInputFileRequest, c: grpc.aio.ServicerContext
                          ) -> pb.RegisterInputFileResponse:
        f = r.file
        size = r.plaintext_size or None
        data_id = self._create("register_input_file", c, r, lambda who, key: (
            self._m.files.register_input(
                who, f.url, f.cmac, _crypto(f.crypto_info, f.HasField("crypto_info")), size,
                idem=key)), created="file")
        return pb.RegisterInputFileResponse(data_id=data_id)

    def ListPendingTasks(self, r: v1.ListPendingTasksRequest, c: grpc.aio.ServicerContext
                         ) -> v1.ListPendingTasksResponse:
        limit = min(r.limit or 100, self._m.ctx.limits.max_list_items)
        pending = self._run("list_pending_tasks", c,
                            lambda who: self._m.reviews.pending(who, limit))
        return v1.ListPendingTasksResponse(tasks=[v1.PendingTask(
            task_id=p.task_id, creator=p.creator, function_id=p.function_id,
            function_name=p.function_name, status=common.TaskStatus.ValueType(int(p.status)),
            unassigned=p.unassigned) for p in pending])

    def ReviewTask(self, r: v1.ReviewTaskRequest, c: grpc.aio.ServicerContext
                   ) -> v1.TaskReview:
        review = self._run("review_task", c, lambda who: self._m.reviews.review(
            who, self._m.tasks.get(who, r.task_id)), _about(tasks=[r.task_id]))
        return review_response(review)

    def RejectTask(self, r: v1.RejectTaskRequest, c: grpc.aio.ServicerContext
                   ) -> empty_pb2.Empty:
        self._run("reject_task", c, lambda who: self._m.tasks.reject(who, r.task_id, r.reason),
                  _about(tasks=[r.task_id]))
        return empty_pb2.Empty()

    # Signed approvals: a few short statements each (one Ed25519 verification at
    # most), so they run on the loop like the task RPCs (module _serving).
    @inline
    def RegisterSigningKey(self, r: v1.RegisterSigningKeyRequest, c: grpc.aio.ServicerContext
                           ) -> v1.SigningKeyInfo:
        key = self._run("register_signing_key", c,
                        lambda who: self._m.signed.register_key(who, r.public_key))
        return _key_info(key)

    @inline
    def GetSigningKeys(self, r: v1.GetSigningKeysRequest, c: grpc.aio.ServicerContext
                       ) -> v1.GetSigningKeysResponse:
        keys = self._run("get_signing_keys", c, lambda who: self._m.signed.keys(who, r.task_id))
        return v1.GetSigningKeysResponse(keys=[_key_info(k) for k in keys])

    @inline
    def CreateTask(self, r: v1.CreateTaskRequest, c: grpc.aio.ServicerContext
                   ) -> v1.CreateTaskResponse:
        t = r.task
        policy = _policy(r.approval_policy) if r.HasField("approval_policy") else None
        made: list[CreatedTask] = []

        def make(who: Principal, key: IdempotencyKey | None) -> str:
            made.append(self._m.signed.create_task(
                who, t.function_id, t.function_arguments, t.executor,
                _owner_lists(t.inputs_ownership), _owner_lists(t.outputs_ownership), policy,
                idem=key))
            return made[-1].task_id

        def replayed(who: Principal, tid: str) -> None:  # the first attempt's task
            made.append(self._m.signed.created(who, tid))

        tid = self._create("create_signed_task" if policy is not None else "create_task", c,
                           r, make, "task", _about(functions=[t.function_id]), replayed)
        done = made[-1]
        return v1.CreateTaskResponse(
            task_id=tid, statement=done.statement.encode() if done.statement else b"",
            statement_pending=done.pending)

    @inline
    def SetApprovalPolicy(self, r: v1.SetApprovalPolicyRequest, c: grpc.aio.ServicerContext
                          ) -> empty_pb2.Empty:
        groups = [(g.name, g.k, list(g.members)) for g in r.groups]
        self._run("set_approval_policy", c, lambda who: self._m.signed.set_task_policy(
            who, r.task_id, groups, r.not_after, list(r.measurements)))
        return empty_pb2.Empty()

    @inline
    def SetFunctionApprovalPolicy(self, r: v1.SetFunctionApprovalPolicyRequest,
                                  c: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        self._run("set_function_approval_policy", c, lambda who: self._m.signed.
                  set_function_policy(who, r.function_id, r.require_signed))
        return empty_pb2.Empty()

    @inline
    def GetApprovalStatement(self, r: v1.ApprovalStatementRequest, c: grpc.aio.ServicerContext
                             ) -> v1.ApprovalStatementResponse:
        statement, signed = self._run("get_approval_statement", c,
                                      lambda who: self._m.signed.statement(who, r.task_id))
        return v1.ApprovalStatementResponse(statement=statement.encode(), signed_by=signed)

    @inline
    def SignApproval(self, r: v1.SignApprovalRequest, c: grpc.aio.ServicerContext
                     ) -> empty_pb2.Empty:
        if r.invoke:
            self._run("sign_and_invoke_task", c, lambda who: self._m.signed.sign(
                who, r.task_id, r.digest, r.signature, invoke=self._sched.stage),
                _about(tasks=[r.task_id]))
        else:
            self._run("sign_approval", c, lambda who: self._m.signed.sign(
                who, r.task_id, r.digest, r.signature))
        return empty_pb2.Empty()

    @inline
    def RevokeApproval(self, r: v1.RevokeApprovalRequest, c: grpc.aio.ServicerContext
                       ) -> empty_pb2.Empty:
        self._run("revoke_approval", c, lambda who: self._m.signed.revoke(who, r.task_id))
        return empty_pb2.Empty()

    @inline
    def GetReceipt(self, r: v1.GetReceiptRequest, c: grpc.aio.ServicerContext
                   ) -> v1.GetReceiptResponse:
        return v1.GetReceiptResponse(receipt=self._run(
            "get_receipt", c, lambda who: self._m.signed.receipt(who, r.task_id)))

    async def WaitTask(self, r: v1.WaitTaskRequest, c: grpc.aio.ServicerContext
                       ) -> pb.GetTaskResponse:
        timeout = min(r.timeout_ms, self._m.ctx.limits.max_wait_ms) / 1000
        task = await self._f.run_async(
            "wait_task", *_caller(c),
            lambda who, record: self._m.tasks.wait(who, r.task_id, timeout, then=record),
            _about(tasks=[r.task_id]))
        return task_response(task)

    def ListTasks(self, r: v1.ListTasksRequest, c: grpc.aio.ServicerContext
                  ) -> v1.ListTasksResponse:
        limit = min(r.limit or 100, self._m.ctx.limits.max_list_items)
        return v1.ListTasksResponse(task_ids=self._run(
            "list_tasks", c, lambda who: self._m.tasks.list_for(who, limit)))


def _policy(p: v1.ApprovalPolicy) -> PolicyRequest:
    return PolicyRequest([(g.name, g.k, list(g.members)) for g in p.groups], p.not_after,
                         list(p.measurements))


def _key_info(key: SigningKey) -> v1.SigningKeyInfo:
    return v1.SigningKeyInfo(user_id=key.user_id, public_key=key.public_key,
                             fingerprint=key.fingerprint, registered_at=key.registered_at)


def add_frontend_servicers(frontend: Frontend, management: Management, scheduler: Scheduler,
                           audit: AuditLog, blobs: BlobStore | None, server: grpc.aio.Server,
                           audit_signer: Callable[[], AttestedCertificate] | None = None
                           ) -> tuple[str, ...]:
    """Serve Teaclave's frontend and confide.v1's extensions; their full service names.

    ``audit_signer`` gives the attested certificate (and key) whose key signs
    participant audit tree heads; without it QueryParticipantAudit is UNIMPLEMENTED.
    """
    pb_grpc.add_TeaclaveFrontendServicer_to_server(
        _Teaclave(frontend, management, scheduler, audit), server)
    v1_grpc.add_ConfideFrontendServicer_to_server(
        _Confide(frontend, management, scheduler, blobs, audit, audit_signer), server)
    return (pb.DESCRIPTOR.services_by_name["TeaclaveFrontend"].full_name,
            v1.DESCRIPTOR.services_by_name["ConfideFrontend"].full_name)
