"""The services over gRPC: their adapters, the interceptor and the serving loop.

* one adapter module per service (``authentication``, ``frontend``,
  ``scheduler``, ``keys``): convert messages, call the service, nothing else;
* ``_serving``: the event loop every server of a process runs on
  (:class:`RpcLoop`), :func:`build_server`, where each handler runs
  (:func:`inline`), and :class:`ErrorInterceptor`, the one place where domain
  errors become gRPC statuses (and, through a :class:`ServingGate`, where a
  stopping server refuses new RPCs);
* ``_health``: ``grpc.health.v1`` and server reflection on every server
  (:class:`ServerHealth`).

Kept apart from ``confide.services`` so the services (and their unit tests)
never import grpc; what a server shares with its callers (protos, stubs,
message conversions, certificates) is ``confide.rpc``. The composition root
(``confide.node``) decides which of these a node serves.
"""

from ._health import ServerHealth
from ._serving import (
    ErrorInterceptor,
    Inline,
    RpcLoop,
    ServingGate,
    build_server,
    inline,
    metadata_value,
)

__all__ = ["ErrorInterceptor", "Inline", "RpcLoop", "ServerHealth", "ServingGate", "build_server",
           "inline", "metadata_value"]
