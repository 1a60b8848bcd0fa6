"""confide's gRPC server stack: where each handler runs and how errors map.

A real ``grpc.aio`` server over TLS on :class:`RpcLoop`, called by a plain
synchronous grpc client.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from confide import _suspend
from confide.api import Inline, RpcLoop, ServerHealth, ServingGate, build_server, inline
from confide.errors import Code, ServiceError
from confide.rpc import api_certificate
from confide.rpc._gen import teaclave_frontend_service_pb2 as pb

Handler = Callable[[pb.GetTaskRequest, Any], Any]


class _Probe:
    """Handlers that report the thread they ran on in the response (and
    " suspended" when in a greenlet whose waits park)."""

    def __init__(self) -> None:
        self.canceled = threading.Event()
        self.waiting = threading.Event()
        self.parked = threading.Event()
        self.wake_end, self.wait_end = socket.socketpair()

    @staticmethod
    def _answer() -> pb.GetTaskRequest:
        where = threading.current_thread().name
        return pb.GetTaskRequest(task_id=where + (" suspended" if _suspend.suspendable() else ""))

    def handlers(self) -> dict[str, Handler]:
        def pooled(r: pb.GetTaskRequest, c: Any) -> pb.GetTaskRequest:
            return self._answer()

        @inline
        def on_loop(r: pb.GetTaskRequest, c: Any) -> pb.GetTaskRequest:
            return self._answer()

        async def awaiting(r: pb.GetTaskRequest, c: Any) -> pb.GetTaskRequest:
            await asyncio.sleep(0)
            return self._answer()

        async def forever(r: pb.GetTaskRequest, c: Any) -> pb.GetTaskRequest:
            self.waiting.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                self.canceled.set()
                raise
            return r

        @inline
        def parks(r: pb.GetTaskRequest, c: Any) -> pb.GetTaskRequest:
            """Waits for a byte on a socket the way the PostgreSQL pipe waits."""
            self.parked.set()
            readable, _ = _suspend.wait_socket(self.wait_end.fileno(), write=False)
            assert readable
            self.wait_end.recv(1)
            return self._answer()

        @inline
        def refused(r: pb.GetTaskRequest, c: Any) -> pb.GetTaskRequest:
            raise ServiceError(Code.PERMISSION_DENIED, "not yours")

        def broken(r: pb.GetTaskRequest, c: Any) -> pb.GetTaskRequest:
            raise KeyError("a bug")

        async def broken_async(r: pb.GetTaskRequest, c: Any) -> pb.GetTaskRequest:
            raise ServiceError(Code.NOT_FOUND, "no such task")

        return {"Pooled": pooled, "OnLoop": on_loop, "Awaiting": awaiting, "Forever": forever,
                "Parks": parks, "Refused": refused, "Broken": broken, "BrokenAsync": broken_async}


@pytest.fixture(scope="module")
def probe() -> _Probe:
    return _Probe()


@pytest.fixture(scope="module")
def channel(probe: _Probe) -> Iterator[grpc.Channel]:
    yield from _serve(probe, inline="loop")


@pytest.fixture(scope="module")
def suspended_channel(probe: _Probe) -> Iterator[grpc.Channel]:
    yield from _serve(probe, inline="suspended")


def _serve(probe: _Probe, *, inline: Inline, gate: ServingGate | None = None
           ) -> Iterator[grpc.Channel]:
    pair = api_certificate(dt.datetime.now(dt.UTC))
    rpc = RpcLoop()
    server = build_server(rpc, max_message_bytes=1024, inline=inline, gate=gate)
    health = ServerHealth(server, ["t.Probe"])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.Probe", {
        name: grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=pb.GetTaskRequest.FromString,
            response_serializer=pb.GetTaskRequest.SerializeToString)
        for name, fn in probe.handlers().items()}),))
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials(
        [(pair.key_pem, pair.cert_pem)]))
    rpc.run(server.start())
    rpc.run(health.update({"": True, "t.Probe": True}))
    ch = grpc.secure_channel(f"127.0.0.1:{port}", grpc.ssl_channel_credentials(pair.cert_pem),
                             options=[("grpc.ssl_target_name_override", "CN=Teaclave")])
    yield ch
    ch.close()
    rpc.run(server.stop(None))
    rpc.close()


def _call(channel: grpc.Channel, method: str, request: pb.GetTaskRequest | None = None,
          timeout: float = 10) -> str:
    stub = channel.unary_unary(f"/t.Probe/{method}",
                               request_serializer=pb.GetTaskRequest.SerializeToString,
                               response_deserializer=pb.GetTaskRequest.FromString)
    return str(stub(request or pb.GetTaskRequest(), timeout=timeout).task_id)


def test_handlers_run_where_they_are_placed(channel: grpc.Channel) -> None:
    assert _call(channel, "OnLoop") == "rpc-loop"  # not in a greenlet either
    assert _call(channel, "Awaiting") == "rpc-loop"
    assert _call(channel, "Pooled").startswith("rpc_")  # the server's thread pool


def test_suspended_inline_handlers_run_in_a_greenlet_on_the_loop(
        suspended_channel: grpc.Channel, probe: _Probe) -> None:
    """The placement for PostgreSQL: a handler waiting for its socket parks, and
    the loop serves other RPCs meanwhile (nothing runs on a pool thread)."""
    assert _call(suspended_channel, "OnLoop") == "rpc-loop suspended"
    assert _call(suspended_channel, "Awaiting") == "rpc-loop"
    assert _call(suspended_channel, "Pooled").startswith("rpc_")
    stub = suspended_channel.unary_unary(
        "/t.Probe/Parks", request_serializer=pb.GetTaskRequest.SerializeToString,
        response_deserializer=pb.GetTaskRequest.FromString)
    parked = stub.future(pb.GetTaskRequest(), timeout=10)
    assert probe.parked.wait(5)
    assert _call(suspended_channel, "OnLoop") == "rpc-loop suspended"  # served meanwhile
    assert not parked.done()
    probe.wake_end.send(b"x")
    assert parked.result().task_id == "rpc-loop suspended"


@pytest.mark.parametrize(("method", "code", "details"), [
    ("Refused", grpc.StatusCode.PERMISSION_DENIED, "not yours"),
    ("Broken", grpc.StatusCode.INTERNAL, "service internal error"),
    ("BrokenAsync", grpc.StatusCode.NOT_FOUND, "no such task"),
])
def test_errors_become_statuses(channel: grpc.Channel, method: str, code: grpc.StatusCode,
                                details: str) -> None:
    with pytest.raises(grpc.RpcError) as e:
        _call(channel, method)
    assert e.value.code() is code
    assert e.value.details() == details


def test_oversized_request_is_out_of_range(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as e:
        _call(channel, "OnLoop", pb.GetTaskRequest(task_id="x" * 2000))
    assert e.value.code() is grpc.StatusCode.OUT_OF_RANGE
    assert "found 2003 bytes, the limit is: 1024 bytes" in str(e.value.details())


def test_a_caller_that_gives_up_cancels_the_awaiting_handler(channel: grpc.Channel,
                                                            probe: _Probe) -> None:
    with pytest.raises(grpc.RpcError) as e:
        _call(channel, "Forever", timeout=0.3)
    assert e.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert probe.waiting.is_set()
    assert probe.canceled.wait(5)  # its finally blocks run: no waiter is left behind
    assert _call(channel, "OnLoop") == "rpc-loop"  # and the loop serves on


def test_a_closed_gate_refuses_new_rpcs_but_health_still_answers(probe: _Probe) -> None:
    """What a client meets while the server shuts down: UNAVAILABLE naming it, no hang."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    gate = ServingGate()
    serving = _serve(probe, inline="loop", gate=gate)
    channel = next(serving)
    try:
        assert _call(channel, "OnLoop") == "rpc-loop"
        gate.close("the server is shutting down; retry once it is back")
        for method in ("OnLoop", "Pooled", "Awaiting"):
            with pytest.raises(grpc.RpcError) as e:
                _call(channel, method, timeout=5)
            assert e.value.code() is grpc.StatusCode.UNAVAILABLE
            assert e.value.details() == "the server is shutting down; retry once it is back"
        check = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert check.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        next(serving, None)
