"""HTTP/2 keepalive on the worker ↔ scheduler channel, both ends in one place.

A worker whose host lost its link noticed only when TCP gave up (minutes):
its heartbeat and long-poll calls hung on a connection that was gone, and
after the link came back gRPC waited out its reconnect backoff (up to 120 s)
before it tried again. The scheduler, for its part, kept a dead worker's
long-poll open and could lease it a task nobody would run.

With these options each end pings the other every :data:`PING_INTERVAL_MS`
and drops the connection when a ping is not answered within
:data:`PING_TIMEOUT_MS`: a cut is noticed within about 5 s, well inside the
lease (``--executor-timeout``), calls on the dead connection fail
``UNAVAILABLE`` (the worker retries them), the scheduler cancels the dead
worker's polls, and a reconnect is tried at least every
:data:`MAX_RECONNECT_BACKOFF_MS` once the link is back.

gRPC's defaults refuse such pings: a server answers a client that pings more
often than every 5 minutes with GOAWAY ("too_many_pings"), and a client sends
at most two pings while no call sends data (a long-poll sends none). Both
sides must therefore take their options from here.
"""

from __future__ import annotations

__all__ = [
    "MAX_RECONNECT_BACKOFF_MS",
    "PING_INTERVAL_MS",
    "PING_TIMEOUT_MS",
    "client_options",
    "server_options",
]

#: How often each end pings when the connection is otherwise idle.
PING_INTERVAL_MS = 2_000
#: A ping not answered within this long drops the connection.
PING_TIMEOUT_MS = 3_000
#: The longest pause between two reconnect attempts (gRPC's default is 120 s).
MAX_RECONNECT_BACKOFF_MS = 2_000
#: The first pause, and the shortest time a connect attempt is given.
_MIN_RECONNECT_BACKOFF_MS = 1_000

Option = tuple[str, int]


def client_options() -> list[Option]:
    """Channel options for the worker side (``grpc.secure_channel(..., options=)``)."""
    return [
        ("grpc.keepalive_time_ms", PING_INTERVAL_MS),
        ("grpc.keepalive_timeout_ms", PING_TIMEOUT_MS),
        ("grpc.http2.ping_timeout_ms", PING_TIMEOUT_MS),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),  # unlimited: long-polls send no data
        ("grpc.initial_reconnect_backoff_ms", _MIN_RECONNECT_BACKOFF_MS),
        ("grpc.min_reconnect_backoff_ms", _MIN_RECONNECT_BACKOFF_MS),
        ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS),
    ]


def server_options() -> list[Option]:
    """Server options for the scheduler side (``grpc.aio.server(options=)``): accept
    the workers' pings, and ping them too (a dead worker's long-poll is cancelled)."""
    return [
        ("grpc.keepalive_time_ms", PING_INTERVAL_MS),
        ("grpc.keepalive_timeout_ms", PING_TIMEOUT_MS),
        ("grpc.http2.ping_timeout_ms", PING_TIMEOUT_MS),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        # Half the interval: a client's ping that comes a little early is no strike.
        ("grpc.http2.min_ping_interval_without_data_ms", PING_INTERVAL_MS // 2),
        ("grpc.http2.max_ping_strikes", 0),  # never GOAWAY a worker for pinging
    ]
