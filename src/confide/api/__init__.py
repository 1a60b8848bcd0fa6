"""gRPC adapters of the services: convert messages, call the service, nothing else.

Kept apart from ``confide.services`` so the services (and their unit tests)
never import grpc.
"""

__all__: list[str] = []
