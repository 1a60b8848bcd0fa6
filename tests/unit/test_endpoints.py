"""Several frontends (issue 12 item 6): endpoint entries, name resolution, which calls may be
sent again, and the pool's failover, against fake channels (no server, no network)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from confide.client import ClientError, ServerAttestationError
from confide.client._endpoints import (
    MAX_ENDPOINTS,
    RPC_KINDS,
    CallKind,
    Endpoint,
    EndpointError,
    call_kind,
    format_endpoints,
    never_sent,
    parse_endpoints,
    resolve_endpoints,
)
from confide.client._failover import EndpointChannels, EndpointPool, FailoverChannel
from confide.client._sdk import Client
from confide.errors import ErrorDetail
from confide.rpc._gen import confide_v1_pb2, teaclave_authentication_service_pb2
from confide.rpc._gen import teaclave_frontend_service_pb2 as pb
from confide.rpc._rich_status import status_trailer

REFUSED = ("failed to connect to all addresses; last error: UNKNOWN: ipv4:10.0.0.1:7777: "
           "Failed to connect to remote host: Connection refused")
BROKEN = "Stream removed (Socket closed)"


# -- parsing ----------------------------------------------------------------------------------
def test_an_entry_takes_host_then_frontend_then_authentication_port() -> None:
    assert parse_endpoints("fe1") == (Endpoint("fe1", 7777, 7776),)
    assert parse_endpoints("fe1:8777") == (Endpoint("fe1", 8777, 7776),)
    assert parse_endpoints("fe1:8777:8776") == (Endpoint("fe1", 8777, 8776),)
    assert parse_endpoints("fe1", frontend_port=1, authentication_port=2) == (
        Endpoint("fe1", 1, 2),)


def test_comma_lists_and_repeated_entries_keep_order_without_repeats() -> None:
    got = parse_endpoints(["fe1, fe2:9", "fe3", "fe1:7777:7776"])
    assert got == (Endpoint("fe1"), Endpoint("fe2", 9), Endpoint("fe3"))
    assert parse_endpoints(format_endpoints(got)) == got  # the profile's stored form reads back


def test_ipv6_addresses_go_in_brackets() -> None:
    assert parse_endpoints("[::1]:8777:8776") == (Endpoint("::1", 8777, 8776),)
    assert parse_endpoints("[fd00::2]") == (Endpoint("fd00::2"),)
    assert Endpoint("::1").target(7777) == "[::1]:7777"
    assert str(Endpoint("::1")) == "[::1]:7777:7776"


@pytest.mark.parametrize(("entry", "message"), [
    ("fe1:0", "not a port"),
    ("fe1:65536", "not a port"),
    ("fe1:http", "not a port"),
    ("fe1:7777:-1", "not a port"),
    ("fe1:1:2:3", "expected HOST[:FRONTEND_PORT[:AUTH_PORT]]"),
    (":7777", "no host"),
    ("::1", "no host"),
    ("fd00::1:7777", "expected HOST"),
    ("[::1", "closing ']'"),
    ("[not-v6]:7777", "not an IPv6 address"),
    ("[::1]7777", "expected ':PORT'"),
    ("user@fe1", "not a host name"),
    ("fe1/x", "not a host name"),
    ("fe1,,fe2", "empty entry"),
    ("", "no endpoint given"),
    (" , ", "empty entry"),
    ("a" * 301, "longer than 300"),
])
def test_a_malformed_entry_is_refused_naming_it(entry: str, message: str) -> None:
    with pytest.raises(EndpointError) as e:
        parse_endpoints(entry)
    assert message in e.value.message
    assert e.value.code == "INVALID_ARGUMENT"


def test_at_most_max_endpoints() -> None:
    hosts = [f"fe{i}" for i in range(MAX_ENDPOINTS)]
    assert len(parse_endpoints(hosts)) == MAX_ENDPOINTS
    with pytest.raises(EndpointError, match=f"at most {MAX_ENDPOINTS}"):
        parse_endpoints([*hosts, "one-more"])


def test_a_profile_saved_before_several_endpoints_reads_as_one() -> None:
    from confide.cli._session import Session

    old = Session("fe1", 8776, 8777, "", "alice", "t")
    assert old.endpoint_entries() == ["fe1:8777:8776"]
    assert Session("::1", 1, 2, "").endpoint_entries() == ["[::1]:2:1"]
    assert parse_endpoints(Session("::1", 1, 2, "").endpoint_entries()) == (
        Endpoint("::1", 2, 1),)
    many = Session("fe1", 7776, 7777, "", hosts=["fe1:7777:7776", "fe2:9:8"])
    assert many.endpoint_entries() == ["fe1:7777:7776", "fe2:9:8"]
    assert many.server() == "fe1:7777,fe2:9"


# -- resolution -------------------------------------------------------------------------------
def _resolver(table: dict[str, list[str]]) -> Callable[..., list[tuple[Any, ...]]]:
    def getaddrinfo(host: str, port: int, **_kw: Any) -> list[tuple[Any, ...]]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port)) for a in table[host]]
    return getaddrinfo


def test_a_name_with_several_addresses_becomes_one_endpoint_per_address() -> None:
    resolve = _resolver({"api.example": ["10.0.0.1", "10.0.0.2", "10.0.0.1", "fd00::3"]})
    got = resolve_endpoints(parse_endpoints("api.example:8777:8776"), getaddrinfo=resolve)
    assert got == (Endpoint("10.0.0.1", 8777, 8776), Endpoint("10.0.0.2", 8777, 8776),
                   Endpoint("fd00::3", 8777, 8776))


def test_a_name_with_one_address_or_none_stays_a_name_and_addresses_are_not_looked_up() -> None:
    looked_up: list[str] = []

    def resolve(host: str, port: int, **kw: Any) -> list[tuple[Any, ...]]:
        looked_up.append(host)
        return _resolver({"one.example": ["10.0.0.9"]})(host, port, **kw)

    got = resolve_endpoints(parse_endpoints("one.example,gone.example,10.0.0.5,[::1]"),
                            getaddrinfo=resolve)
    assert got == (Endpoint("one.example"), Endpoint("gone.example"), Endpoint("10.0.0.5"),
                   Endpoint("::1"))
    assert looked_up == ["one.example", "gone.example"]


def test_resolution_is_capped_too() -> None:
    many = [f"10.1.{i // 250}.{i % 250}" for i in range(MAX_ENDPOINTS + 1)]
    with pytest.raises(EndpointError, match="resolve to 33 endpoints"):
        resolve_endpoints(parse_endpoints("big.example"),
                          getaddrinfo=_resolver({"big.example": many}))


# -- what may be sent again ------------------------------------------------------------------
def _client_rpcs() -> set[str]:
    services = [
        teaclave_authentication_service_pb2.DESCRIPTOR.services_by_name[
            "TeaclaveAuthenticationApi"],
        pb.DESCRIPTOR.services_by_name["TeaclaveFrontend"],
        confide_v1_pb2.DESCRIPTOR.services_by_name["ConfideFrontend"],
    ]
    return {f"/{s.full_name}/{m.name}" for s in services for m in s.methods}


def test_every_client_rpc_is_classified_and_nothing_else() -> None:
    assert set(RPC_KINDS) == _client_rpcs()


@pytest.mark.parametrize(("rpc", "kind"), [
    ("/confide.v1.ConfideFrontend/WaitTask", CallKind.READ),
    ("/confide.v1.ConfideFrontend/QueryParticipantAudit", CallKind.READ),
    ("/confide.v1.ConfideFrontend/GetApprovalStatement", CallKind.READ),
    ("/teaclave_frontend_service_proto.TeaclaveFrontend/CreateTask", CallKind.CREATE),
    ("/confide.v1.ConfideFrontend/RegisterInputFile", CallKind.CREATE),
    ("/teaclave_frontend_service_proto.TeaclaveFrontend/InvokeTask", CallKind.ONCE),
    ("/teaclave_frontend_service_proto.TeaclaveFrontend/ApproveTask", CallKind.ONCE),
    ("/confide.v1.ConfideFrontend/SignApproval", CallKind.ONCE),
    ("/teaclave_authentication_service_proto.TeaclaveAuthenticationApi/ResetUserPassword",
     CallKind.ONCE),
    ("/confide.v1.ConfideFrontend/SomethingNew", CallKind.ONCE),  # unknown: fail safe
])
def test_calls_are_classified_by_their_rpc(rpc: str, kind: CallKind) -> None:
    assert call_kind(rpc) is kind


def test_only_a_failed_connection_or_a_refusal_before_work_proves_never_sent() -> None:
    assert never_sent(ClientError("UNAVAILABLE", REFUSED))
    assert never_sent(ClientError("UNAVAILABLE", "DNS resolution failed for fe9:7777"))
    assert never_sent(ClientError("UNAVAILABLE", "shutting down", reason="SHUTTING_DOWN"))
    assert not never_sent(ClientError("UNAVAILABLE", BROKEN))
    assert not never_sent(ClientError("UNAVAILABLE", "recvmsg: Connection reset by peer"))
    assert not never_sent(ClientError("UNAVAILABLE", "database unreachable",
                                      reason="STORAGE_UNAVAILABLE"))
    assert not never_sent(ClientError("DEADLINE_EXCEEDED", REFUSED))
    assert not never_sent(ClientError("INTERNAL", "x", reason="SHUTTING_DOWN"))


# -- the pool, with fake channels ------------------------------------------------------------
class _Error(grpc.RpcError):  # type: ignore[misc]
    def __init__(self, code: grpc.StatusCode, details: str, trailer: tuple[Any, ...] = ()) -> None:
        self._code, self._details, self._trailer = code, details, trailer

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[Any, ...]:
        return self._trailer


_DEFAULTS: dict[str, Callable[[], Any]] = {
    "ListTasks": confide_v1_pb2.ListTasksResponse, "GetTask": pb.GetTaskResponse}


@pytest.fixture(autouse=True)
def _no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("confide.client._sdk.RETRY_DELAYS_S", (0.0, 0.0, 0.0, 0.0))


class _FakeChannel:
    """Answers each call from ``script`` (an exception to raise, or a response)."""

    def __init__(self, name: str, log: list[tuple[str, str, dict[str, str]]]) -> None:
        self.name = name
        self.log = log
        self.script: list[Any] = []
        self.closed = False

    def unary_unary(self, method: str, request_serializer: Any = None,
                    response_deserializer: Any = None, _registered_method: bool = False
                    ) -> Callable[..., Any]:
        def call(request: Any, timeout: float | None = None, metadata: Any = None,
                 **_kw: Any) -> Any:
            self.log.append((self.name, method.rsplit("/", 1)[-1], dict(metadata or ())))
            name = method.rsplit("/", 1)[-1]
            outcome = self.script.pop(0) if self.script else _DEFAULTS.get(name, lambda: None)()
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        return call

    def close(self) -> None:
        self.closed = True


class _World:
    def __init__(self, n: int = 2) -> None:
        self.log: list[tuple[str, str, dict[str, str]]] = []
        self.endpoints = [Endpoint(f"fe{i}") for i in range(1, n + 1)]
        self.front: dict[str, list[_FakeChannel]] = {e.host: [] for e in self.endpoints}
        self.refuse: set[str] = set()  # fails attestation
        self.down: set[str] = set()  # cannot be reached
        self.attests: list[str] = []
        self.now = 100.0

    def connector(self, e: Endpoint) -> EndpointChannels:
        self.attests.append(e.host)
        if e.host in self.refuse:
            raise ServerAttestationError("mr-enclave-mismatch", f"{e.host}: not ours")
        if e.host in self.down:
            raise ClientError("UNAVAILABLE", f"cannot reach {e.host}")
        front = _FakeChannel(e.host, self.log)
        self.front[e.host].append(front)
        return EndpointChannels(e, _FakeChannel(e.host + "-auth", self.log), front, (),
                                f"cert-{e.host}".encode())

    def pool(self) -> EndpointPool:
        pool = EndpointPool(self.endpoints, self.connector, clock=lambda: self.now)
        pool.connect_all()
        return pool

    def client(self) -> Client:
        pool = self.pool()
        client = Client(FailoverChannel(pool, "authentication"), FailoverChannel(pool, "frontend"),
                        timeout=5)
        client.use_token("alice", "token")
        return client

    def script(self, host: str, *outcomes: Any) -> None:
        self.front[host][-1].script.extend(outcomes)

    def sent(self, method: str) -> list[str]:
        return [host for host, m, _ in self.log if m == method]


def _unavailable(details: str) -> _Error:
    return _Error(grpc.StatusCode.UNAVAILABLE, details)


def test_all_endpoints_are_attested_at_connect_and_the_first_is_used() -> None:
    world = _World(3)
    client = world.client()
    assert sorted(world.attests) == ["fe1", "fe2", "fe3"]
    world.script("fe1", pb.GetTaskResponse(task_id="t1", status=1))
    assert client.get_task("t1").task_id == "t1"
    assert world.sent("GetTask") == ["fe1"]
    assert [state for _, state in client.endpoints] == ["in use", "ready", "ready"]


def test_a_read_fails_over_when_the_connection_broke_and_then_stays_there() -> None:
    world = _World()
    client = world.client()
    world.script("fe1", _unavailable(BROKEN))
    world.script("fe2", confide_v1_pb2.ListTasksResponse(task_ids=["a"]),
                 confide_v1_pb2.ListTasksResponse(task_ids=["b"]))
    assert client.list_tasks() == ["a"]
    assert client.list_tasks() == ["b"]
    assert world.sent("ListTasks") == ["fe1", "fe2", "fe2"]  # sticky after the failover
    assert [state for _, state in client.endpoints] == ["down", "in use"]


def test_wait_task_is_a_read_and_survives_a_frontend_dying_during_the_wait() -> None:
    world = _World()
    client = world.client()
    world.script("fe1", _unavailable(BROKEN))
    world.script("fe2", pb.GetTaskResponse(task_id="t1", status=10))
    assert client.wait("t1", timeout=1).task_id == "t1"
    assert world.sent("WaitTask") == ["fe1", "fe2"]


def test_a_create_is_resent_elsewhere_with_the_same_idempotency_key() -> None:
    world = _World()
    client = world.client()
    world.script("fe1", _unavailable(BROKEN))
    world.script("fe2", pb.CreateTaskResponse(task_id="t-1"))
    assert client.create_task("f", {}, executor="builtin") == "t-1"
    keys = [meta["idempotency-key"] for _, m, meta in world.log if m == "CreateTask"]
    assert len(keys) == 2 and keys[0] == keys[1] and len(keys[0]) >= 16
    assert world.sent("CreateTask") == ["fe1", "fe2"]


def test_a_call_with_an_effect_is_not_resent_when_it_may_have_been_acted_on() -> None:
    world = _World()
    client = world.client()
    world.script("fe1", _unavailable(BROKEN))
    with pytest.raises(ClientError) as e:
        client.invoke_task("t1")
    assert e.value.code == "UNAVAILABLE" and "Socket closed" in e.value.message
    assert world.sent("InvokeTask") == ["fe1"]  # never a second invocation
    # ... but the session moved on: the next call goes to the other frontend
    world.script("fe2", pb.GetTaskResponse(task_id="t1"))
    client.get_task("t1")
    assert world.sent("GetTask") == ["fe2"]


def test_a_call_with_an_effect_is_resent_when_the_connection_was_never_made() -> None:
    world = _World()
    client = world.client()
    world.script("fe1", _unavailable(REFUSED))
    world.script("fe2", None)  # google.protobuf.Empty
    client.approve_task("t1")
    assert world.sent("ApproveTask") == ["fe1", "fe2"]


def test_a_draining_frontends_refusal_moves_even_a_call_with_an_effect() -> None:
    world = _World()
    client = world.client()
    trailer = status_trailer(14, "the server is shutting down",
                             ErrorDetail("SHUTTING_DOWN", (), ""))
    world.script("fe1", _Error(grpc.StatusCode.UNAVAILABLE, "the server is shutting down",
                               trailer))
    world.script("fe2", None)
    client.cancel_task("t1")
    assert world.sent("CancelTask") == ["fe1", "fe2"]


def test_an_answer_that_is_an_error_is_not_failed_over() -> None:
    world = _World()
    client = world.client()
    world.script("fe1", _Error(grpc.StatusCode.PERMISSION_DENIED, "Permission denied"))
    with pytest.raises(ClientError) as e:
        client.get_task("t1")
    assert e.value.code == "PERMISSION_DENIED"
    assert world.sent("GetTask") == ["fe1"]
    assert [state for _, state in client.endpoints] == ["in use", "ready"]


def test_an_endpoint_that_fails_attestation_is_never_sent_anything() -> None:
    world = _World(3)
    world.refuse = {"fe1"}
    client = world.client()
    world.script("fe2", _unavailable(BROKEN))
    world.script("fe3", pb.GetTaskResponse(task_id="t1"))
    client.get_task("t1")
    assert "fe1" not in {host for host, _, _ in world.log}
    assert world.attests.count("fe1") == 1  # not attested again either
    assert [state for _, state in client.endpoints] == ["refused", "down", "in use"]


def test_connect_fails_closed_when_no_endpoint_attests() -> None:
    world = _World()
    world.refuse = {"fe1"}
    world.down = {"fe2"}
    with pytest.raises(ServerAttestationError) as e:
        world.pool()
    assert e.value.reason == "mr-enclave-mismatch"
    world.refuse = set()
    world.down = {"fe1", "fe2"}
    with pytest.raises(ClientError) as unreachable:
        world.pool()
    assert unreachable.value.code == "UNAVAILABLE"
    assert "cannot reach fe1" in unreachable.value.message


def test_an_endpoint_down_at_connect_is_attested_when_it_is_needed() -> None:
    world = _World()
    world.down = {"fe2"}
    client = world.client()
    world.down = set()
    world.now += 5
    world.script("fe1", _unavailable(BROKEN))
    client.list_tasks()  # fe2 is attested now, then used
    assert world.attests.count("fe2") == 2
    assert world.sent("ListTasks") == ["fe1", "fe2"]


def test_a_failed_endpoint_is_attested_again_before_it_is_used_again() -> None:
    """A replica that restarted has a new key: its old pin must not be reused blindly."""
    world = _World()
    client = world.client()
    world.script("fe1", _unavailable(BROKEN))
    world.script("fe2", confide_v1_pb2.ListTasksResponse(), _unavailable(BROKEN))
    client.list_tasks()
    world.now += 5
    client.list_tasks()  # fe2 dies too: fe1 is attested again (a new channel) and answers
    assert world.attests.count("fe1") == 2
    assert len(world.front["fe1"]) == 2
    assert world.sent("ListTasks") == ["fe1", "fe2", "fe2", "fe1"]
    assert world.front["fe1"][0].closed is False  # retired channels close with the session
    client.close()
    assert world.front["fe1"][0].closed is True


def test_when_every_endpoint_is_unavailable_the_last_error_is_raised() -> None:
    world = _World()
    client = world.client()
    world.script("fe1", *[_unavailable(REFUSED)] * 5)
    world.script("fe2", *[_unavailable(REFUSED)] * 5)
    world.down = {"fe1", "fe2"}  # and cannot be attested again while down
    with pytest.raises(ClientError) as e:
        client.approve_task("t1")
    assert e.value.code == "UNAVAILABLE"
    assert world.sent("ApproveTask")[:2] == ["fe1", "fe2"]


def test_a_long_session_remembers_only_the_newest_frontend_certificates() -> None:
    from confide.client._failover import _KEPT_CERTIFICATES

    made = iter(range(1000))

    def connector(e: Endpoint) -> EndpointChannels:
        log: list[tuple[str, str, dict[str, str]]] = []
        return EndpointChannels(e, _FakeChannel("a", log), _FakeChannel("f", log), (),
                                f"cert-{next(made)}".encode())

    now = [0.0]
    pool = EndpointPool([Endpoint("fe1")], connector, clock=lambda: now[0])
    pool.connect_all()
    for _ in range(_KEPT_CERTIFICATES + 5):  # the replica re-attested, the session followed
        pool.failed(0, ClientError("UNAVAILABLE", REFUSED))
        now[0] += 5
        assert pool.channels(0) is not None
    kept = pool.frontend_certificates_der
    assert len(kept) == _KEPT_CERTIFICATES
    assert kept[-1] == f"cert-{_KEPT_CERTIFICATES + 5}".encode() and b"cert-0" not in kept
