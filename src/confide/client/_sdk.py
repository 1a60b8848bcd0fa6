"""A typed, synchronous Python SDK for confide (and any Teaclave 0.6 server).

Example::

    client = Client.connect_data_dir(Path("confide-data"), "localhost")  # attests first
    client.login("alice", "secret")
    fid = client.register_function("builtin-echo", executor_type="builtin",
                                   arguments=[FunctionArgument("message")])
    tid = client.create_task(fid, {"message": "hi"}, executor="builtin")
    client.invoke_task(tid)
    print(client.wait(tid).return_value)
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import random
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import grpc
from cryptography.hazmat.primitives.asymmetric import rsa

from .._status import TaskStatus
from ..crypto import DEFAULT_SCHEMA, CryptoError, encrypt_stream
from ..rpc._gen import confide_v1_pb2 as v1
from ..rpc._gen import confide_v1_pb2_grpc as v1_grpc
from ..rpc._gen import teaclave_authentication_service_pb2 as auth_pb
from ..rpc._gen import teaclave_authentication_service_pb2_grpc as auth_grpc
from ..rpc._gen import teaclave_common_pb2 as common
from ..rpc._gen import teaclave_frontend_service_pb2 as pb
from ..rpc._gen import teaclave_frontend_service_pb2_grpc as pb_grpc
from ..rpc._tls import pin_target_name
from ._attested import (
    API_SERVICE_TABLES,
    AttestedEndpoint,
    ServerAttestationError,
    TrustInputs,
    TrustRoot,
    attest_endpoint,
    load_der_certificate,
    trust_from_bundle,
)
from ._audit import ParticipantAudit, check_extends, verify_participant_audit
from ._endpoints import (
    DEFAULT_AUTHENTICATION_PORT,
    DEFAULT_FRONTEND_PORT,
    CallKind,
    Endpoint,
    never_sent,
    parse_endpoints,
    resolve_endpoints,
)
from ._errors import ClientError, from_rpc_error
from ._failover import EndpointChannels, EndpointPool, FailoverCall, FailoverChannel
from ._review import CODE_REVIEW, PendingTask, TaskReview
from ._signed import SignedApprovalsMixin, create_task_request
from ._transfer import Progress, download_decrypt, put_file, upload_encrypt

__all__ = [
    "AuditEntry",
    "BlobUrls",
    "Client",
    "EncryptedFile",
    "FunctionArgument",
    "FunctionFile",
    "OutputLocation",
    "PendingTask",
    "Task",
    "TaskReview",
    "TaskStatus",
]

T = TypeVar("T")
_KEY_BYTES = {"aes-gcm-128": 16, "aes-gcm-256": 32, "teaclave-file-128": 16}


@dataclass(frozen=True)
class FunctionArgument:
    key: str
    default_value: str = ""
    allow_overwrite: bool = True


@dataclass(frozen=True)
class FunctionFile:
    name: str
    description: str = ""
    optional: bool = False


@dataclass(frozen=True)
class Task:
    task_id: str
    creator: str
    function_id: str
    function_owner: str
    function_arguments: dict[str, Any]
    participants: list[str]
    approved_users: list[str]
    inputs_ownership: dict[str, list[str]]
    outputs_ownership: dict[str, list[str]]
    assigned_inputs: dict[str, str]
    assigned_outputs: dict[str, str]
    status: int
    ok: bool | None  # None until the task ended
    return_value: bytes = b""
    tags_map: dict[str, bytes] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    reason: str = ""

    @property
    def status_name(self) -> str:
        try:
            return TaskStatus(self.status).label
        except ValueError:  # a server newer than this SDK
            return str(self.status)

    @property
    def final(self) -> bool:
        return self.status in {s for s in TaskStatus if s.final}

    @classmethod
    def from_proto(cls, r: pb.GetTaskResponse) -> Task:
        which = r.result.WhichOneof("result")
        ok = None if which is None else which == "Ok"
        return cls(
            task_id=r.task_id, creator=r.creator, function_id=r.function_id,
            function_owner=r.function_owner,
            function_arguments=json.loads(r.function_arguments or "{}"),
            participants=list(r.participants), approved_users=list(r.approved_users),
            inputs_ownership={o.data_name: list(o.uids) for o in r.inputs_ownership},
            outputs_ownership={o.data_name: list(o.uids) for o in r.outputs_ownership},
            assigned_inputs={d.data_name: d.data_id for d in r.assigned_inputs},
            assigned_outputs={d.data_name: d.data_id for d in r.assigned_outputs},
            status=int(r.status), ok=ok,
            return_value=r.result.Ok.return_value if ok else b"",
            tags_map=dict(r.result.Ok.tags_map) if ok else {},
            log=list(r.result.Ok.log) if ok else [],
            reason=r.result.Err.reason if ok is False else "",
        )


@dataclass(frozen=True)
class BlobUrls:
    object_name: str
    put_url: str
    get_url: str
    rw_url: str
    expires_at: int


@dataclass(frozen=True)
class EncryptedFile:
    """An uploaded ciphertext: what registering it as an input needs."""

    url: str
    schema: str
    key: bytes
    iv: bytes
    cmac: bytes
    size: int | None = None  # plaintext bytes (declared when registering), if known


@dataclass(frozen=True)
class OutputLocation:
    """A registered output on the blob store, with the key to read it back."""

    data_id: str
    get_url: str
    schema: str
    key: bytes
    iv: bytes


@dataclass(frozen=True)
class AuditEntry:
    microsecond: int
    ip: bytes
    user: str
    message: str
    result: bool


#: Pauses between attempts of a retried call (each scaled by a random 0.5-1.5).
RETRY_DELAYS_S: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
Hosts = str | Sequence[str | Endpoint]


def _channel(host: str, port: int, server_cert: bytes) -> grpc.Channel:
    try:
        # The certificate is pinned; its name check (and SNI) uses a name it carries.
        target_name = pin_target_name(server_cert, host)
    except ValueError as e:
        raise ClientError("INVALID_ARGUMENT",
                          f"the server certificate is not a PEM or DER certificate: {e}") from e
    creds = grpc.ssl_channel_credentials(root_certificates=server_cert)
    return grpc.secure_channel(Endpoint(host).target(port), creds, options=[
        ("grpc.ssl_target_name_override", target_name),
        ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ])


def _endpoints(host: str | None, hosts: Hosts | None, frontend_port: int,
               authentication_port: int) -> tuple[Endpoint, ...]:
    """``host`` or ``hosts`` (not both) as endpoints, names resolved to all their addresses."""
    if host is not None and hosts is not None:
        raise ClientError("INVALID_ARGUMENT", "give host or hosts, not both")
    if hosts is None:
        hosts = [host or "localhost"]
    entries = [hosts] if isinstance(hosts, str) else list(hosts)
    parsed = [e for entry in entries for e in (
        (entry,) if isinstance(entry, Endpoint) else
        parse_endpoints(entry, frontend_port=frontend_port,
                        authentication_port=authentication_port))]
    return resolve_endpoints(list(dict.fromkeys(parsed)))


def _connected(pool: EndpointPool) -> EndpointPool:
    """``pool`` after every endpoint was tried (attested) side by side."""
    pool.connect_all()
    return pool


class Client(SignedApprovalsMixin):
    """One user's session with a confide (or Teaclave) server."""

    def __init__(self, auth_channel: grpc.Channel | FailoverChannel,
                 frontend_channel: grpc.Channel | FailoverChannel,
                 *, timeout: float = 30.0) -> None:
        if isinstance(auth_channel, FailoverChannel) and \
                isinstance(frontend_channel, FailoverChannel):
            self._pool = auth_channel.pool
        else:  # channels made by the caller: one endpoint, used as it is
            self._pool = EndpointPool.fixed(EndpointChannels(
                Endpoint("(given channels)"), auth_channel, frontend_channel, (), None))
        auth = FailoverChannel(self._pool, "authentication")
        front = FailoverChannel(self._pool, "frontend")
        self._auth = auth_grpc.TeaclaveAuthenticationApiStub(auth)
        self._front = pb_grpc.TeaclaveFrontendStub(front)
        self._ext = v1_grpc.ConfideFrontendStub(front)
        self._timeout = timeout
        self.user_id: str | None = None
        self._token: str | None = None
        current = self._pool.current
        #: The endpoints appraised by ``connect_attested`` (the first endpoint in use;
        #: empty when pinned by hand).
        self.attested: tuple[AttestedEndpoint, ...] = current.attested if current else ()
        #: The frontend's pinned certificate (DER): what signs audit tree heads. With
        #: several endpoints, the first one's; each endpoint's own is accepted for its answers.
        self.frontend_certificate_der: bytes | None = \
            current.frontend_certificate_der if current else None
        #: The newest audit tree head this session verified: (size, root). Set it to
        #: one verified earlier (saved) to have the next answer proven to extend it.
        self.audit_head: tuple[int, bytes] | None = None

    @property
    def endpoints(self) -> list[tuple[Endpoint, str]]:
        """Each endpoint of this session and its state (``in use``, ``ready``, ``down``,
        ``refused``)."""
        return self._pool.status()

    @classmethod
    def connect(cls, host: str | None = None, *, server_cert: bytes | Path,
                hosts: Hosts | None = None,
                authentication_port: int = DEFAULT_AUTHENTICATION_PORT,
                frontend_port: int = DEFAULT_FRONTEND_PORT, timeout: float = 30.0) -> Client:
        """Connect to a server whose API certificate is ``server_cert`` (PEM bytes or file).

        ``hosts`` (instead of ``host``): several replicas that all serve that
        certificate, as ``HOST[:FRONTEND_PORT[:AUTH_PORT]]`` entries (or comma
        lists); calls fail over between them (:meth:`connect_attested`).
        """
        pem = server_cert.read_bytes() if isinstance(server_cert, Path) else server_cert
        der = load_der_certificate(pem)

        def pinned(e: Endpoint) -> EndpointChannels:
            return EndpointChannels(e, _channel(e.host, e.authentication_port, pem),
                                    _channel(e.host, e.frontend_port, pem), (), der)

        endpoints = _endpoints(host, hosts, frontend_port, authentication_port)
        pool = EndpointPool(endpoints, pinned)
        for index in range(len(endpoints)):  # nothing to verify: no connection is made yet
            pool.channels(index)
        return cls._with_pool(pool, timeout)

    @classmethod
    def _with_pool(cls, pool: EndpointPool, timeout: float) -> Client:
        return cls(FailoverChannel(pool, "authentication"), FailoverChannel(pool, "frontend"),
                   timeout=timeout)

    @classmethod
    def connect_attested(
        cls,
        host: str | None = None,
        *,
        hosts: Hosts | None = None,
        as_root: bytes | Path,
        enclave_info: bytes | Path,
        enclave_info_signatures: Sequence[bytes | Path],
        auditor_keys: Sequence[bytes | Path | rsa.RSAPublicKey],
        threshold: int = 1,
        trust: Sequence[TrustRoot] | None = None,
        authentication_port: int = DEFAULT_AUTHENTICATION_PORT,
        frontend_port: int = DEFAULT_FRONTEND_PORT,
        timeout: float = 30.0,
        now: dt.datetime | None = None,
    ) -> Client:
        """Attest the server, then connect pinned to the certificates that passed.

        Nothing is sent to the server before its evidence was appraised: the
        auditors' signatures over ``enclave_info`` are verified (``threshold``
        distinct auditors), each API endpoint's certificate is checked as the
        Teaclave SDK does plus its skipped checks (AS-root chain, report
        signature, key binding, MRENCLAVE/MRSIGNER of
        ``teaclave_authentication_service`` / ``teaclave_frontend_service``,
        status, freshness, debug bit), and when ``trust`` is given the RA-TLS
        quote is verified with dcap-qvl under an ``AppraisalPolicy`` with those
        roots (``INTEL_SGX_ROOT_CA_DER``, or ``UnsafeTrustSimRoot`` for sim).

        With ``hosts``, several replicas of the client APIs (or a name that
        resolves to several addresses) are attested side by side, each pinned to
        its own certificates; calls stay on one and fail over to the next when it
        is unavailable: reads, and creates (with the same idempotency key), are
        resent there; other calls only when the request provably never left
        (docs/cli.md, "Several frontends"). A replica that fails attestation is
        never used; one that is down is attested when it is first needed.

        Args:
            host: server address (default ``localhost``).
            hosts: instead of ``host``: ``HOST[:FRONTEND_PORT[:AUTH_PORT]]``
                entries (or comma-separated lists), in order of preference.
            as_root: the attestation report service root (PEM/DER bytes or file).
            enclave_info: the raw ``enclave_info.toml`` (bytes or file).
            enclave_info_signatures: the auditors' signatures (bytes or files).
            auditor_keys: the auditors' RSA public keys (PEM bytes, files or keys).
            threshold: distinct auditors required.
            trust: DCAP roots for the RA-TLS check; None skips that check.
            authentication_port: the authentication API port (entries without one).
            frontend_port: the frontend API port (entries without one).
            timeout: RPC timeout in seconds.
            now: decision time (default: the clock; this is the API edge).

        Raises:
            ServerAttestationError: a check failed (its ``reason`` names it), on
                every endpoint that could be reached.
            ClientError: ``UNAVAILABLE`` when no endpoint can be reached.
        """
        inputs = TrustInputs.verify(
            as_root=as_root, enclave_info=enclave_info,
            enclave_info_signatures=enclave_info_signatures, auditor_keys=auditor_keys,
            threshold=threshold, trust=trust)
        return cls._attest_and_connect(
            _endpoints(host, hosts, frontend_port, authentication_port), inputs, timeout, now)

    @classmethod
    def connect_data_dir(
        cls,
        data_dir: Path,
        host: str | None = None,
        *,
        hosts: Hosts | None = None,
        authentication_port: int = DEFAULT_AUTHENTICATION_PORT,
        frontend_port: int = DEFAULT_FRONTEND_PORT,
        threshold: int = 1,
        trust: Sequence[TrustRoot] | None = None,
        timeout: float = 30.0,
        now: dt.datetime | None = None,
    ) -> Client:
        """:meth:`connect_attested` with the trust files ``confide serve`` wrote to ``data_dir``.

        Reads ``enclave_info.toml``, ``auditors/*/*.public.pem`` and
        ``*.sign.sha256``, ``as-root-ca.pem`` and (sim) ``sim-dcap-root.der``.
        ``trust`` defaults to that sim root through ``UnsafeTrustSimRoot``
        (logged as unsafe) when present, else Intel's SGX root.
        """
        from ..attestation import AttestationError, TrustBundle

        try:
            bundle = TrustBundle.load(data_dir)
        except AttestationError as e:
            raise ServerAttestationError("trust-files-invalid", str(e)) from e
        inputs = trust_from_bundle(bundle, threshold=threshold, trust=trust)
        return cls._attest_and_connect(
            _endpoints(host, hosts, frontend_port, authentication_port), inputs, timeout, now)

    @classmethod
    def _attest_and_connect(cls, endpoints: Sequence[Endpoint], inputs: TrustInputs,
                            timeout: float, now: dt.datetime | None) -> Client:
        fixed_now = now

        def attest(e: Endpoint) -> EndpointChannels:
            # An endpoint attested again later (it was down) is judged at that time.
            when = fixed_now if fixed_now is not None else dt.datetime.now(dt.UTC)
            # The two APIs are appraised side by side: most of each is waiting on a
            # handshake or in native verification code.
            with ThreadPoolExecutor(max_workers=1) as pool:
                auth_job = pool.submit(attest_endpoint, e.host, e.authentication_port,
                                       API_SERVICE_TABLES["authentication"], inputs, now=when)
                front = attest_endpoint(e.host, e.frontend_port,
                                        API_SERVICE_TABLES["frontend"], inputs, now=when)
                auth = auth_job.result()
            return EndpointChannels(
                e, _channel(e.host, e.authentication_port, auth.certificate_pem),
                _channel(e.host, e.frontend_port, front.certificate_pem), (auth, front),
                front.peer.certificate_der)

        return cls._with_pool(_connected(EndpointPool(endpoints, attest)), timeout)

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------
    def _metadata(self) -> list[tuple[str, str]]:
        if self._token is None or self.user_id is None:
            raise ClientError("UNAUTHENTICATED", "not logged in")
        return [("id", self.user_id), ("token", self._token)]

    def _call(self, method: Callable[..., T], request: Any, *, auth: bool = True,
              timeout: float | None = None) -> T:
        """One RPC; retried when no endpoint could answer and a retry is safe.

        What is safe depends on the RPC (``_endpoints.RPC_KINDS``): a create
        (``Register…``, ``CreateTask``) carries a fresh ``idempotency-key``, the
        same on each attempt and on each endpoint, so a retry after a lost answer
        returns what the first attempt made instead of making it twice: it is
        retried on UNAVAILABLE and DEADLINE_EXCEEDED (the first attempt may have
        committed). A read (``Get…``, ``List…``, ``Query…``, ``Review…``,
        ``WaitTask``, ``CreateBlobUrls``, logins) is retried on UNAVAILABLE. Every
        other call (approve, invoke, cancel, ...) is retried only when it provably
        never left (``never_sent``). Attempts are ``RETRY_DELAYS_S`` apart; within
        one attempt the endpoint pool already failed over to every other endpoint.
        """
        metadata = self._metadata() if auth else []
        kind = method.kind if isinstance(method, FailoverCall) else CallKind.ONCE
        codes: frozenset[str] = frozenset({"UNAVAILABLE"})
        if kind is CallKind.CREATE:
            metadata = [*metadata, ("idempotency-key", uuid.uuid4().hex)]
            codes = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})
        for attempt in range(len(RETRY_DELAYS_S) + 1):
            try:
                return method(request, metadata=metadata or None,
                              timeout=timeout or self._timeout)
            except grpc.RpcError as e:
                error = from_rpc_error(e)
            except ClientError as e:  # the pool: no endpoint could be connected
                error = e
            safe = kind is not CallKind.ONCE or never_sent(error)
            if attempt == len(RETRY_DELAYS_S) or error.code not in codes or not safe:
                raise error from None
            time.sleep(RETRY_DELAYS_S[attempt] * (0.5 + random.random()))  # noqa: S311 - jitter
        raise AssertionError("unreachable")

    # -- users -------------------------------------------------------------
    def login(self, user_id: str, password: str) -> str:
        resp = self._call(self._auth.UserLogin,
                          auth_pb.UserLoginRequest(id=user_id, password=password), auth=False)
        self.user_id, self._token = user_id, resp.token
        return str(resp.token)

    def use_token(self, user_id: str, token: str) -> None:
        self.user_id, self._token = user_id, token

    def register_user(self, user_id: str, password: str, role: str, attribute: str = "") -> None:
        self._call(self._auth.UserRegister, auth_pb.UserRegisterRequest(
            id=user_id, password=password, role=role, attribute=attribute))

    def update_user(self, user_id: str, password: str, role: str, attribute: str = "") -> None:
        self._call(self._auth.UserUpdate, auth_pb.UserUpdateRequest(
            id=user_id, password=password, role=role, attribute=attribute))

    def change_password(self, password: str) -> None:
        self._call(self._auth.UserChangePassword,
                   auth_pb.UserChangePasswordRequest(password=password))

    def reset_user_password(self, user_id: str) -> str:
        return str(self._call(self._auth.ResetUserPassword,
                              auth_pb.ResetUserPasswordRequest(id=user_id)).password)

    def delete_user(self, user_id: str) -> None:
        self._call(self._auth.DeleteUser, auth_pb.DeleteUserRequest(id=user_id))

    def list_users(self, user_id: str) -> list[str]:
        return list(self._call(self._auth.ListUsers, auth_pb.ListUsersRequest(id=user_id)).ids)

    # -- functions ---------------------------------------------------------
    def register_function(
        self, name: str, *, executor_type: str, description: str = "", public: bool = True,
        payload: bytes = b"", arguments: Sequence[FunctionArgument] = (),
        inputs: Sequence[FunctionFile] = (), outputs: Sequence[FunctionFile] = (),
        user_allowlist: Sequence[str] = (), usage_quota: int = -1,
        code_review: str | None = "open",
    ) -> str:
        """Register a function. ``usage_quota=-1`` is unlimited; 0 means never invocable.

        ``code_review`` decides what participants of a task using the function
        see when they review it (:meth:`review_task`): ``"open"`` its code,
        ``"confidential"`` only its SHA-256 and owner. Both go through
        confide.v1; ``None`` uses Teaclave's RegisterFunction (for a Teaclave
        server; confide then keeps the code confidential).
        """
        if code_review is not None and code_review not in CODE_REVIEW:
            raise ClientError("INVALID_ARGUMENT",
                              f"code_review must be one of {', '.join(CODE_REVIEW)} or None")
        req = pb.RegisterFunctionRequest(
            name=name, description=description, executor_type=executor_type, public=public,
            payload=payload,
            arguments=[pb.FunctionArgument(key=a.key, default_value=a.default_value,
                                           allow_overwrite=a.allow_overwrite) for a in arguments],
            inputs=[pb.FunctionInput(name=i.name, description=i.description,
                                     optional=i.optional) for i in inputs],
            outputs=[pb.FunctionOutput(name=o.name, description=o.description,
                                       optional=o.optional) for o in outputs],
            user_allowlist=list(user_allowlist), usage_quota=usage_quota)
        if code_review is None:
            return str(self._call(self._front.RegisterFunction, req).function_id)
        return str(self._call(self._ext.RegisterFunction, v1.RegisterFunctionRequest(
            function=req, code_review=CODE_REVIEW[code_review])).function_id)

    def set_code_review(self, function_id: str, code_review: str) -> None:
        """The owner decides whether task participants may read the code (open/confidential)."""
        if code_review not in CODE_REVIEW:
            raise ClientError("INVALID_ARGUMENT",
                              f"code_review must be one of {', '.join(CODE_REVIEW)}")
        self._call(self._ext.SetCodeReview, v1.SetCodeReviewRequest(
            function_id=function_id, code_review=CODE_REVIEW[code_review]))

    def get_function(self, function_id: str) -> pb.GetFunctionResponse:
        resp: pb.GetFunctionResponse = self._call(
            self._front.GetFunction, pb.GetFunctionRequest(function_id=function_id))
        return resp

    def get_function_usage_stats(self, function_id: str) -> tuple[int, int]:
        r = self._call(self._front.GetFunctionUsageStats,
                       pb.GetFunctionUsageStatsRequest(function_id=function_id))
        return int(r.function_quota), int(r.current_usage)

    def list_functions(self, user_id: str | None = None) -> tuple[list[str], list[str]]:
        r = self._call(self._front.ListFunctions,
                       pb.ListFunctionsRequest(user_id=user_id or self.user_id or ""))
        return list(r.registered_functions), list(r.allowed_functions)

    def delete_function(self, function_id: str) -> None:
        self._call(self._front.DeleteFunction, pb.DeleteFunctionRequest(function_id=function_id))

    def disable_function(self, function_id: str) -> None:
        self._call(self._front.DisableFunction,
                   pb.DisableFunctionRequest(function_id=function_id))

    # -- files -------------------------------------------------------------
    def register_input_file(self, url: str, *, schema: str, key: bytes, iv: bytes,
                            cmac: bytes, plaintext_size: int | None = None) -> str:
        """Register an encrypted input; returns its id.

        With ``plaintext_size`` (confide.v1) the server refuses at once, when the
        input is assigned, a file over the task's executor input cap.
        """
        req = pb.RegisterInputFileRequest(
            url=url, cmac=cmac, crypto_info=common.FileCryptoInfo(schema=schema, key=key, iv=iv))
        if plaintext_size is None:
            return str(self._call(self._front.RegisterInputFile, req).data_id)
        return str(self._call(self._ext.RegisterInputFile, v1.RegisterInputFileRequest(
            file=req, plaintext_size=plaintext_size)).data_id)

    def register_output_file(self, url: str, *, schema: str, key: bytes, iv: bytes = b"") -> str:
        req = pb.RegisterOutputFileRequest(
            url=url, crypto_info=common.FileCryptoInfo(schema=schema, key=key, iv=iv))
        return str(self._call(self._front.RegisterOutputFile, req).data_id)

    def register_fusion_output(self, owners: Sequence[str]) -> str:
        return str(self._call(self._front.RegisterFusionOutput,
                              pb.RegisterFusionOutputRequest(owner_list=list(owners))).data_id)

    def register_input_from_output(self, data_id: str) -> str:
        return str(self._call(self._front.RegisterInputFromOutput,
                              pb.RegisterInputFromOutputRequest(data_id=data_id)).data_id)

    def get_input_file(self, data_id: str) -> tuple[list[str], bytes]:
        r = self._call(self._front.GetInputFile, pb.GetInputFileRequest(data_id=data_id))
        return list(r.owner), bytes(r.cmac)

    def get_output_file(self, data_id: str) -> tuple[list[str], bytes]:
        r = self._call(self._front.GetOutputFile, pb.GetOutputFileRequest(data_id=data_id))
        return list(r.owner), bytes(r.cmac)

    # -- tasks -------------------------------------------------------------
    def create_task(self, function_id: str, arguments: Mapping[str, Any], *, executor: str,
                    inputs_ownership: Mapping[str, Sequence[str]] | None = None,
                    outputs_ownership: Mapping[str, Sequence[str]] | None = None) -> str:
        req = create_task_request(function_id, arguments, executor=executor,
                                  inputs_ownership=inputs_ownership,
                                  outputs_ownership=outputs_ownership)
        return str(self._call(self._front.CreateTask, req).task_id)

    def assign_data(self, task_id: str, *, inputs: Mapping[str, str] | None = None,
                    outputs: Mapping[str, str] | None = None) -> None:
        self._call(self._front.AssignData, pb.AssignDataRequest(
            task_id=task_id,
            inputs=[pb.DataMap(data_name=n, data_id=i) for n, i in (inputs or {}).items()],
            outputs=[pb.DataMap(data_name=n, data_id=i) for n, i in (outputs or {}).items()]))

    def approve_task(self, task_id: str) -> None:
        self._call(self._front.ApproveTask, pb.ApproveTaskRequest(task_id=task_id))

    def invoke_task(self, task_id: str) -> None:
        self._call(self._front.InvokeTask, pb.InvokeTaskRequest(task_id=task_id))

    def cancel_task(self, task_id: str) -> None:
        self._call(self._front.CancelTask, pb.CancelTaskRequest(task_id=task_id))

    def get_task(self, task_id: str) -> Task:
        return Task.from_proto(self._call(self._front.GetTask, pb.GetTaskRequest(task_id=task_id)))

    def wait(self, task_id: str, timeout: float = 60.0) -> Task:
        """Block until the task ends (server-side wait, no polling) or ``timeout`` passes."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            step = max(0.0, min(remaining, 30.0))
            resp = self._call(self._ext.WaitTask,
                              v1.WaitTaskRequest(task_id=task_id, timeout_ms=int(step * 1000)),
                              timeout=step + self._timeout)
            task = Task.from_proto(resp)
            if task.final or remaining <= step:
                return task

    def list_tasks(self, limit: int = 100) -> list[str]:
        return list(self._call(self._ext.ListTasks, v1.ListTasksRequest(limit=limit)).task_ids)

    # -- review before approval (confide.v1) -----------------------------------
    def pending_tasks(self, limit: int = 100) -> list[PendingTask]:
        """Tasks that wait for my approval (or rejection), newest first."""
        r = self._call(self._ext.ListPendingTasks, v1.ListPendingTasksRequest(limit=limit))
        return [PendingTask(p.task_id, p.creator, p.function_id, p.function_name, int(p.status),
                            list(p.unassigned)) for p in r.tasks]

    def review_task(self, task_id: str) -> TaskReview:
        """Everything my approval of ``task_id`` covers (participants only)."""
        return TaskReview.from_proto(self._call(self._ext.ReviewTask,
                                                v1.ReviewTaskRequest(task_id=task_id)))

    def reject_task(self, task_id: str, reason: str = "") -> None:
        """Reject a task I participate in: it cannot run until I approve it after all."""
        self._call(self._ext.RejectTask, v1.RejectTaskRequest(task_id=task_id, reason=reason))

    # -- data on the embedded blob store --------------------------------------
    def blob_urls(self, file_name: str, ttl_s: int = 0) -> BlobUrls:
        """Presigned PUT/GET URLs for a new object on the server's blob store."""
        r = self._call(self._ext.CreateBlobUrls,
                       v1.CreateBlobUrlsRequest(file_name=file_name, ttl_s=ttl_s))
        return BlobUrls(r.object_name, r.put_url, r.get_url, r.rw_url, int(r.expires_at))

    def upload_encrypted(self, data: bytes | Path, *, file_name: str = "data",
                         schema: str = DEFAULT_SCHEMA, key: bytes | None = None,
                         iv: bytes | None = None) -> EncryptedFile:
        """Encrypt ``data`` here, upload the ciphertext to the blob store.

        Returns what :meth:`register_input_file` needs (URL, crypto info, cmac).
        A fresh random key (and IV) is made unless given; keep the result's key.
        A ``Path`` is streamed (:meth:`upload_file`).
        """
        if isinstance(data, Path):
            return self.upload_file(data, file_name=file_name, schema=schema, key=key, iv=iv)
        key, iv = self._fresh_key(schema, key, iv)
        urls = self.blob_urls(file_name)
        sealed = io.BytesIO()
        try:
            cmac = encrypt_stream(schema, key, iv, io.BytesIO(data), sealed, file_name=file_name)
        except CryptoError as e:
            raise ClientError("INVALID_ARGUMENT", f"cannot encrypt: {e}") from e
        size = sealed.tell()
        sealed.seek(0)
        put_file(urls.put_url, sealed, size, timeout=self._timeout)
        return EncryptedFile(urls.get_url, schema, key, iv, cmac, len(data))

    def upload_file(self, path: Path, *, file_name: str | None = None,
                    schema: str = DEFAULT_SCHEMA, key: bytes | None = None,
                    iv: bytes | None = None, put_url: str | None = None,
                    get_url: str | None = None, progress: Progress | None = None
                    ) -> EncryptedFile:
        """Encrypt the file at ``path`` while uploading it, in bounded memory.

        Goes to the server's blob store unless ``put_url`` is given (your own
        storage that accepts an HTTP PUT, e.g. a presigned S3 URL); ``get_url``
        is then where workers will fetch it (default: ``put_url``).
        ``progress(n)`` is called with the ciphertext bytes sent.
        """
        key, iv = self._fresh_key(schema, key, iv)
        name = file_name or path.name
        if put_url is None:
            urls = self.blob_urls(name)
            put_url, get_url = urls.put_url, urls.get_url
        size = os.stat(path).st_size
        cmac = upload_encrypt(path, put_url, schema=schema, key=key, iv=iv, file_name=name,
                              timeout=self._timeout, progress=progress)
        return EncryptedFile(get_url or put_url, schema, key, iv, cmac, size)

    @staticmethod
    def _fresh_key(schema: str, key: bytes | None, iv: bytes | None) -> tuple[bytes, bytes]:
        key = key if key is not None else os.urandom(_KEY_BYTES.get(schema, 32))
        iv = iv if iv is not None else (os.urandom(12) if schema.startswith("aes-gcm") else b"")
        return key, iv

    def register_upload(self, upload: EncryptedFile) -> str:
        """Register an :meth:`upload_encrypted` result as an input; returns its id."""
        return self.register_input_file(upload.url, schema=upload.schema, key=upload.key,
                                        iv=upload.iv, cmac=upload.cmac,
                                        plaintext_size=upload.size)

    def new_output(self, *, file_name: str = "result", schema: str = DEFAULT_SCHEMA,
                   key: bytes | None = None, iv: bytes | None = None) -> OutputLocation:
        """Register a fresh output on the blob store; keep the result to download it later."""
        key, iv = self._fresh_key(schema, key, iv)
        urls = self.blob_urls(file_name)
        # The read-write URL: the worker writes it once, and a later task can read
        # it back after RegisterInputFromOutput (which copies the URL).
        data_id = self.register_output_file(urls.rw_url, schema=schema, key=key, iv=iv)
        return OutputLocation(data_id, urls.get_url, schema, key, iv)

    def download_decrypted(self, output: OutputLocation, cmac: bytes | None = None) -> bytes:
        """Fetch an output's ciphertext and decrypt it here (checked against ``cmac``).

        Returns the whole plaintext in memory: for large outputs use :meth:`download_to`.
        """
        with tempfile.TemporaryDirectory(prefix="confide-download-") as tmp:
            path = Path(tmp) / "plain"
            self.download_to(output, path, cmac)
            return path.read_bytes()

    def download_to(self, output: OutputLocation, path: Path, cmac: bytes | None = None, *,
                    progress: Progress | None = None) -> bytes:
        """Fetch, verify and decrypt an output into ``path`` in bounded memory; its cmac.

        ``path`` is replaced only when the ciphertext verified (against ``cmac``
        when given: take it from the task's ``tags_map`` or :meth:`get_output_file`).
        """
        return self.download_url_to(output.get_url, path, schema=output.schema, key=output.key,
                                    iv=output.iv, cmac=cmac, progress=progress)

    def download_url_to(self, url: str, path: Path, *, schema: str, key: bytes, iv: bytes = b"",
                        cmac: bytes | None = None, progress: Progress | None = None) -> bytes:
        """:meth:`download_to` for any URL (your own storage) and crypto info."""
        name = urlsplit(url).path.rsplit("/", 1)[-1]
        return download_decrypt(url, path, schema=schema, key=key, iv=iv, cmac=cmac,
                                file_name=name, timeout=self._timeout, progress=progress)

    # -- audit -------------------------------------------------------------
    def query_audit_logs(self, query: str, limit: int = 100) -> list[AuditEntry]:
        r = self._call(self._front.QueryAuditLogs,
                       pb.QueryAuditLogsRequest(query=query, limit=limit))
        return [AuditEntry(e.microsecond, bytes(e.ip), e.user, e.message, e.result)
                for e in r.logs]

    def participant_audit(self, task_id: str | None = None, limit: int = 100
                          ) -> ParticipantAudit:
        """The audit entries you may see (newest first), verified here.

        Your own calls and logins, and the entries of tasks you take part in and
        of your functions and files; ``task_id`` keeps one task's. Every entry
        is checked to be in the audit tree the server signed with the
        certificate this session pinned (see docs/security.md).

        Raises:
            AuditProofError: the answer does not verify (``DATA_LOSS``).
            ClientError: the call failed.
        """
        known = self.audit_head
        r = self._call(self._ext.QueryParticipantAudit, v1.ParticipantAuditRequest(
            task_id=task_id or "", limit=limit, known_tree_size=known[0] if known else 0))
        # Any frontend this session attested may have answered: each signs with its own key.
        signer = r.tree_head.certificate
        pinned = signer if signer in self._pool.frontend_certificates_der \
            else self.frontend_certificate_der
        view = verify_participant_audit(r, pinned)
        head = (view.tree_head.tree_size, view.tree_head.root)
        if known is not None:
            check_extends(known, head, [bytes(p) for p in r.consistency_proof])
        self.audit_head = head
        return view
