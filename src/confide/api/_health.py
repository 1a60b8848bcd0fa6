"""``grpc.health.v1.Health`` and server reflection on a confide gRPC server.

Each server answers Health/Check and Health/Watch for the empty name (the
server as a whole) and for every service it hosts by its full name
(``teaclave_frontend_service_proto.TeaclaveFrontend``, …); what each status
means is decided by the caller (``confide.node._readiness``). Every status
starts NOT_SERVING, and :meth:`ServerHealth.shutdown` turns them all
NOT_SERVING for good before the server stops, which Watch streams see.

Reflection (``grpc.reflection.v1alpha.ServerReflection``) lists the hosted
services plus Health and reflection itself, and serves their descriptors from
the default pool (the generated ``_pb2`` modules are imported by then).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

__all__ = ["HEALTH_SERVICE", "REFLECTION_SERVICE", "ServerHealth"]

HEALTH_SERVICE: str = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
REFLECTION_SERVICE: str = reflection.SERVICE_NAME
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class ServerHealth:
    """Health and reflection of one ``grpc.aio`` server (module docstring).

    Args:
        server: the server, before it starts.
        services: full names of the services it hosts.
    """

    def __init__(self, server: grpc.aio.Server, services: Sequence[str]) -> None:
        self.services = tuple(services)
        self._servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._servicer, server)
        reflection.enable_server_reflection(
            [*self.services, HEALTH_SERVICE, REFLECTION_SERVICE], server)
        self._statuses: dict[str, bool] = {}

    async def start(self) -> None:
        """Everything NOT_SERVING until the first :meth:`update` (call on the loop)."""
        await self.update(dict.fromkeys(("", *self.services), False))

    async def update(self, serving: Mapping[str, bool]) -> None:
        """Set each named status (call on the server's event loop)."""
        for name, ok in serving.items():
            if self._statuses.get(name) is not ok:
                self._statuses[name] = ok
                await self._servicer.set(name, _SERVING if ok else _NOT_SERVING)

    async def shutdown(self) -> None:
        """NOT_SERVING for every name, permanently (before the server stops)."""
        await self._servicer.enter_graceful_shutdown()

    @property
    def statuses(self) -> dict[str, bool]:
        """The last status set per name (True: SERVING)."""
        return dict(self._statuses)
