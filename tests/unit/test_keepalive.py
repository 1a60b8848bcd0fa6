"""Keepalive on the worker ↔ scheduler channel (rpc/_keepalive.py, issue 12 item 8).

A cut link sends no FIN and no RST: without pings a call on it hangs until its
deadline (the worker's heartbeat: 120 s), and the server keeps a dead worker's
long-poll open. Here a TCP relay that silently drops every byte stands in for
the cut link, with real gRPC on both sides.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from confide.rpc._keepalive import (
    MAX_RECONNECT_BACKOFF_MS,
    PING_INTERVAL_MS,
    PING_TIMEOUT_MS,
    client_options,
    server_options,
)

_METHOD = "/confide.test.Hang/Wait"
_NOTICED_WITHIN_S = (PING_INTERVAL_MS + PING_TIMEOUT_MS) / 1000 + 2.0


class _Relay:
    """127.0.0.1 relay to ``target``; :meth:`cut` makes every connection drop its bytes."""

    def __init__(self, target: int) -> None:
        self._target = target
        self._cut = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self._cut.set()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self._target))
            self._sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                data = src.recv(65536)
                if not data:
                    return
                if not self._cut.is_set():  # a cut link: read and drop, never close
                    dst.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        for s in self._sockets:
            s.close()


class _Hang:
    """A server whose one method waits ``hold_s`` (a long-poll), noting when its
    caller is gone."""

    def __init__(self, options: list[tuple[str, int]], hold_s: float = 30.0) -> None:
        self.caller_gone = threading.Event()
        self._hold_s = hold_s
        handler = grpc.method_handlers_generic_handler("confide.test.Hang", {
            "Wait": grpc.unary_unary_rpc_method_handler(self._wait)})
        self.server = grpc.server(futures.ThreadPoolExecutor(4), options=options,
                                  handlers=[handler])
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def _wait(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        deadline = time.monotonic() + self._hold_s
        while time.monotonic() < deadline:
            if not context.is_active():
                self.caller_gone.set()
                return b""
            time.sleep(0.05)
        return b"done"


@pytest.fixture
def stack(request: pytest.FixtureRequest) -> Iterator[tuple[_Hang, _Relay, grpc.Channel]]:
    server_opts, client_opts, hold_s = request.param
    hang = _Hang(server_opts, hold_s)
    relay = _Relay(hang.port)
    channel = grpc.insecure_channel(f"127.0.0.1:{relay.port}", options=client_opts)
    try:
        yield hang, relay, channel
    finally:
        channel.close()
        relay.close()
        hang.server.stop(0)


def _call(channel: grpc.Channel, timeout: float) -> grpc.Future:
    wait = channel.unary_unary(_METHOD, request_serializer=None, response_deserializer=None)
    return wait.future(b"", timeout=timeout)


def _cut_during_call(relay: _Relay, channel: grpc.Channel, timeout: float
                     ) -> tuple[grpc.StatusCode, float]:
    call = _call(channel, timeout)
    time.sleep(0.5)  # the call is on the wire
    relay.cut()
    cut = time.monotonic()
    with pytest.raises(grpc.RpcError) as failed:
        call.result()
    return failed.value.code(), time.monotonic() - cut


@pytest.mark.parametrize("stack", [(server_options(), client_options(), 30.0)], indirect=True)
def test_a_cut_link_fails_the_workers_call_within_seconds(
        stack: tuple[_Hang, _Relay, grpc.Channel]) -> None:
    _hang, relay, channel = stack
    code, took = _cut_during_call(relay, channel, timeout=30)
    assert code == grpc.StatusCode.UNAVAILABLE
    assert took < _NOTICED_WITHIN_S, took


@pytest.mark.parametrize("stack", [(server_options(), [], 30.0)], indirect=True)
def test_without_keepalive_a_call_on_a_cut_link_hangs_to_its_deadline(
        stack: tuple[_Hang, _Relay, grpc.Channel]) -> None:
    """The bug: the call learns nothing until its deadline."""
    _hang, relay, channel = stack
    code, took = _cut_during_call(relay, channel, timeout=_NOTICED_WITHIN_S + 1)
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert took > _NOTICED_WITHIN_S, took


@pytest.mark.parametrize("stack", [(server_options(), [], 30.0)], indirect=True)
def test_the_scheduler_notices_a_cut_worker_and_ends_its_long_poll(
        stack: tuple[_Hang, _Relay, grpc.Channel]) -> None:
    """Server-side pings: a dead worker's poll is cancelled (it leases no task), even
    when the worker itself sends no pings."""
    hang, relay, channel = stack
    call = _call(channel, timeout=30)
    time.sleep(0.5)
    relay.cut()
    assert hang.caller_gone.wait(_NOTICED_WITHIN_S)
    call.cancel()


@pytest.mark.parametrize("stack", [([], [], 30.0)], indirect=True)
def test_without_server_keepalive_a_dead_workers_poll_stays_open(
        stack: tuple[_Hang, _Relay, grpc.Channel]) -> None:
    hang, relay, channel = stack
    call = _call(channel, timeout=30)
    time.sleep(0.5)
    relay.cut()
    assert not hang.caller_gone.wait(_NOTICED_WITHIN_S)
    call.cancel()


@pytest.mark.parametrize("stack", [(server_options(), client_options(), 5.0)], indirect=True)
def test_a_quiet_long_poll_with_pings_every_two_seconds_is_not_refused(
        stack: tuple[_Hang, _Relay, grpc.Channel]) -> None:
    """Pings every two seconds on a call that sends no data for several ping
    intervals neither fail the call nor the connection (no GOAWAY "too_many_pings")."""
    _hang, _relay, channel = stack
    assert _call(channel, timeout=20).result() == b"done"
    assert _call(channel, timeout=20).result() == b"done"  # and the connection stays usable


def test_detection_and_reconnect_fit_well_inside_a_short_lease() -> None:
    """The multi-host suite's lease is 6 s; the default 30 s."""
    assert PING_INTERVAL_MS + PING_TIMEOUT_MS < 6_000
    assert MAX_RECONNECT_BACKOFF_MS <= PING_INTERVAL_MS
    server = dict(server_options())
    client = dict(client_options())
    assert server["grpc.http2.min_ping_interval_without_data_ms"] <= \
        client["grpc.keepalive_time_ms"]
    assert client["grpc.http2.max_pings_without_data"] == 0
