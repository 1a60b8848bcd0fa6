"""The client host's side of the probe test: run in the client's namespace.

``python _probe_client.py SPEC`` reads a JSON list of servers, each
``{"address", "ca", "server_name", "names", "cert"?, "key"?}``, and prints, per
server, the ``grpc.health.v1`` status of the empty name and of each of
``names`` (or the gRPC code it failed with) and the services that server
reflection lists (``ListServices``), as one JSON object keyed by address.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from confide.rpc import pin_target_name


def _channel(server: dict[str, Any]) -> grpc.Channel:
    ca = Path(server["ca"]).read_bytes()
    key = Path(server["key"]).read_bytes() if server.get("key") else None
    cert = Path(server["cert"]).read_bytes() if server.get("cert") else None
    # A pinned API certificate: one of the names it carries; the platform CA: the name asked.
    name = server["server_name"] if server.get("cert") else pin_target_name(
        ca, server["server_name"])
    return grpc.secure_channel(server["address"], grpc.ssl_channel_credentials(
        ca, private_key=key, certificate_chain=cert),
        options=[("grpc.ssl_target_name_override", name)])


def _status(stub: health_pb2_grpc.HealthStub, name: str) -> str:
    try:
        reply = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
    except grpc.RpcError as e:
        code = e.code() if isinstance(e, grpc.Call) else None
        return code.name if code is not None else "UNKNOWN"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def probe(server: dict[str, Any]) -> dict[str, Any]:
    with _channel(server) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        health = {name: _status(stub, name) for name in ["", *server["names"]]}
        try:
            services = sorted(ProtoReflectionDescriptorDatabase(channel).get_services())
        except grpc.RpcError as e:
            services = [f"error: {e.code().name if isinstance(e, grpc.Call) else e}"]
    return {"health": health, "services": services}


def main() -> None:
    servers = json.loads(sys.argv[1])
    print(json.dumps({s["address"]: probe(s) for s in servers}))


if __name__ == "__main__":
    main()
