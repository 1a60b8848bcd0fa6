"""gRPC adapters of the services: convert messages, call the service, nothing else.

Kept apart from ``confide.services`` so the services (and their unit tests)
never import grpc.
"""

from ._serving import ErrorInterceptor, RpcLoop, build_server, inline, metadata_value

__all__ = ["ErrorInterceptor", "RpcLoop", "build_server", "inline", "metadata_value"]
