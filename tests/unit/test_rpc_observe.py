"""The interceptor's observability: request and task ids for the logs, RPC metrics.

A real ``grpc.aio`` server over TLS (``build_server``), a plain grpc client.
Threats: a caller's header or task id that injects text into the logs; metric
labels from what a caller sends (unknown method paths) instead of the
registered methods.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from confide.api import RpcLoop, build_server, inline
from confide.errors import Code, ServiceError
from confide.rpc import api_certificate
from confide.rpc._gen import teaclave_frontend_service_pb2 as pb
from confide.telemetry import REQUEST_ID, TASK_ID
from confide.telemetry._metrics import REGISTRY

SERVICE = "t.Observed"


def _ids(r: pb.GetTaskRequest, c: Any) -> pb.GetTaskRequest:
    """Answers ``request_id|task_id|thread`` as seen by the handler."""
    logging.getLogger("t.observed").info("handled")
    return pb.GetTaskRequest(task_id=f"{REQUEST_ID.get()}|{TASK_ID.get()}|"
                                     f"{threading.current_thread().name}")


@inline
def _refused(r: pb.GetTaskRequest, c: Any) -> pb.GetTaskRequest:
    raise ServiceError(Code.PERMISSION_DENIED, "not yours")


async def _aborting(r: pb.GetTaskRequest, c: grpc.aio.ServicerContext) -> pb.GetTaskRequest:
    await c.abort(grpc.StatusCode.FAILED_PRECONDITION, "no")
    return r


def _serve(metrics: bool) -> Iterator[grpc.Channel]:
    pair = api_certificate(dt.datetime.now(dt.UTC))
    rpc = RpcLoop()
    server = build_server(rpc, max_message_bytes=1024, metrics=metrics)
    handlers = {"Ids": _ids, "Refused": _refused, "Aborting": _aborting}
    service = SERVICE if metrics else SERVICE + "Off"
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, {
        name: grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=pb.GetTaskRequest.FromString,
            response_serializer=pb.GetTaskRequest.SerializeToString)
        for name, fn in handlers.items()}),))
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials(
        [(pair.key_pem, pair.cert_pem)]))
    rpc.run(server.start())
    ch = grpc.secure_channel(f"127.0.0.1:{port}", grpc.ssl_channel_credentials(pair.cert_pem),
                             options=[("grpc.ssl_target_name_override", "CN=Teaclave")])
    yield ch
    ch.close()
    rpc.run(server.stop(None))
    rpc.close()


@pytest.fixture(scope="module")
def channel() -> Iterator[grpc.Channel]:
    yield from _serve(metrics=True)


@pytest.fixture(scope="module")
def quiet_channel() -> Iterator[grpc.Channel]:
    yield from _serve(metrics=False)


def _call(channel: grpc.Channel, method: str, task_id: str = "",
          metadata: list[tuple[str, str]] | None = None, service: str = SERVICE) -> str:
    stub = channel.unary_unary(f"/{service}/{method}",
                               request_serializer=pb.GetTaskRequest.SerializeToString,
                               response_deserializer=pb.GetTaskRequest.FromString)
    return str(stub(pb.GetTaskRequest(task_id=task_id), metadata=metadata, timeout=10).task_id)


def _handled(method: str, code: str, service: str = SERVICE) -> float:
    value = REGISTRY.get_sample_value("confide_grpc_server_handled_total", {
        "grpc_service": service, "grpc_method": method, "grpc_code": code})
    return value or 0.0


def test_each_rpc_gets_its_own_request_id_even_in_the_pool(channel: grpc.Channel) -> None:
    first, second = (_call(channel, "Ids").split("|") for _ in range(2))
    assert first[0] != second[0] and len(first[0]) == 16
    assert first[2].startswith("rpc_")  # a pool thread: the context travelled with the call


def test_a_callers_request_id_is_kept_when_it_is_a_short_token(channel: grpc.Channel) -> None:
    assert _call(channel, "Ids", metadata=[("x-request-id", "trace-7")]).startswith("trace-7|")
    injected = _call(channel, "Ids", metadata=[("x-request-id", "a b=forged " + "x" * 80)])
    assert "forged" not in injected


def test_the_task_id_of_the_request_is_logging_context(channel: grpc.Channel) -> None:
    tid = "task-00000000-0000-0000-0000-000000000001"
    assert _call(channel, "Ids", task_id=tid).split("|")[1] == tid
    assert _call(channel, "Ids", task_id="task 1 forged=yes").split("|")[1] == "None"


def test_rpcs_are_counted_by_method_and_code(channel: grpc.Channel) -> None:
    before = {k: _handled(*k) for k in (("Ids", "OK"), ("Refused", "PERMISSION_DENIED"),
                                        ("Aborting", "FAILED_PRECONDITION"))}
    _call(channel, "Ids")
    for method in ("Refused", "Aborting"):
        with pytest.raises(grpc.RpcError):
            _call(channel, method)
    deadline = time.monotonic() + 5
    # An aborted RPC's status reaches the client before the handler's coroutine
    # unwinds (where it is counted): wait for the count rather than race it.
    while any(_handled(*k) != v + 1 for k, v in before.items()):
        assert time.monotonic() < deadline, {k: _handled(*k) for k in before}
        time.sleep(0.01)
    count = REGISTRY.get_sample_value("confide_grpc_server_handling_seconds_count",
                                      {"grpc_service": SERVICE, "grpc_method": "Ids"})
    assert count is not None and count >= 1


def test_unknown_methods_make_no_series(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as e:
        _call(channel, "NoSuchMethod")
    assert e.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert REGISTRY.get_sample_value("confide_grpc_server_handling_seconds_count", {
        "grpc_service": SERVICE, "grpc_method": "NoSuchMethod"}) is None


def test_metrics_off_records_nothing(quiet_channel: grpc.Channel) -> None:
    _call(quiet_channel, "Ids", service=SERVICE + "Off")
    assert _handled("Ids", "OK", SERVICE + "Off") == 0
