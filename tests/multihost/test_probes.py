"""Health probes and reflection of every role's gRPC server across hosts (issue 12).

From the client host, each gRPC server of the topology (the control plane's four
roles on ``cp``, a frontend replica on ``fe``, a scheduler on ``sc``) answers the
standard ``grpc.health.v1`` Check for the empty name and for each service it
hosts (SERVING), ``NOT_FOUND`` for every other role's service, and server
reflection lists exactly its own services. The Kubernetes manifests' probes
(deploy/k8s/base) are run as written, on the ports they name. Worker hosts
serve no gRPC (they dial the scheduler). Select with ``-m multihost``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from confide.keys import PlatformCA, service_dns_name
from confide.node import open_root_secret
from confide.rpc import key_pem

from .conftest import PORTS, Cluster, env, text, wait_for

pytestmark = pytest.mark.multihost

HEALTH = "grpc.health.v1.Health"
REFLECTION = "grpc.reflection.v1alpha.ServerReflection"
#: What each role's server hosts (docs/operations.md, "Health probes").
HOSTED = {
    "authentication": ["teaclave_authentication_service_proto.TeaclaveAuthenticationApi"],
    "frontend": ["teaclave_frontend_service_proto.TeaclaveFrontend",
                 "confide.v1.ConfideFrontend"],
    "scheduler": ["confide.v1.Scheduler"],
    "keys": ["confide.v1.KeyService"],
}
EVERY_SERVICE = sorted(name for names in HOSTED.values() for name in names)
MANIFESTS = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "base"


def _probe_identity(cluster: Cluster) -> dict[str, str]:
    """The platform CA and a client certificate it issued for a probe (the scheduler's
    mutual TLS wants one; health and reflection need no particular service)."""
    ca = PlatformCA.from_root_secret(open_root_secret(cluster.cp_dir, create=False))
    key = ec.generate_private_key(ec.SECP256R1())
    der = ca.issue_node_certificate(key.public_key(), node_id="health-probe",
                                    services=["monitoring"], now=dt.datetime.now(dt.UTC))
    paths = {"ca": cluster.work / "platform-ca.pem", "cert": cluster.work / "probe.pem",
             "key": cluster.work / "probe.key"}
    paths["ca"].write_bytes(ca.certificate_pem())
    paths["cert"].write_bytes(x509.load_der_x509_certificate(der).public_bytes(
        serialization.Encoding.PEM))
    paths["key"].write_bytes(key_pem(key))
    return {k: str(v) for k, v in paths.items()}


def _server(address: str, role: str, api_cert: Path, probe: dict[str, str]) -> dict[str, Any]:
    if role == "scheduler":
        return {"address": address, "names": EVERY_SERVICE, **probe,
                "server_name": service_dns_name("scheduler")}
    return {"address": address, "names": EVERY_SERVICE, "ca": str(api_cert),
            "server_name": "localhost"}


def _expected(role: str) -> dict[str, Any]:
    health = {"": "SERVING"} | {name: "SERVING" if name in HOSTED[role] else "NOT_FOUND"
                                for name in EVERY_SERVICE}
    return {"health": health, "services": sorted([*HOSTED[role], HEALTH, REFLECTION])}


def _probe_all(cluster: Cluster, servers: list[dict[str, Any]]) -> dict[str, Any]:
    script = Path(__file__).with_name("_probe_client.py")
    out = cluster.cl.run([sys.executable, str(script), json.dumps(servers)], env=env(),
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def test_every_role_answers_health_and_reflection_with_its_own_services_only(
        cluster: Cluster) -> None:
    log = cluster.start_worker_host(cluster.w1, "w1")  # tasks can run: named services SERVING
    wait_for("the worker host", lambda: "enrolled as w1/executor-" in text(log), log=log)
    fe = cluster.topology.add_host("fe")
    cluster.start_frontend_host(fe, "fe")
    sc = cluster.topology.add_host("sc")
    cluster.start_scheduler_host(sc)
    # A scheduler's named service says whether workers pull from it: give sc its own.
    w2 = cluster.topology.add_host("w2")
    log = cluster.start_worker_host(w2, "w2", scheduler=f"{sc.address}:{PORTS['scheduler']}")
    wait_for("the worker host of sc", lambda: "enrolled as w2/executor-" in text(log), log=log)
    probe = _probe_identity(cluster)
    cp_cert, fe_cert = cluster.cp_dir / "api-cert.pem", cluster.work / "fe" / "api-cert.pem"
    servers = {f"cp {role}": _server(cluster.address(role), role, cp_cert, probe)
               for role in HOSTED}
    servers |= {f"fe {role}": _server(f"{fe.address}:{PORTS[role]}", role, fe_cert, probe)
                for role in ("authentication", "frontend")}
    servers["sc scheduler"] = _server(f"{sc.address}:{PORTS['scheduler']}", "scheduler",
                                      cp_cert, probe)
    expected = {name: _expected(name.split()[1]) for name in servers}

    def answers() -> dict[str, Any]:
        by_address = _probe_all(cluster, list(servers.values()))
        return {name: by_address[s["address"]] for name, s in servers.items()}

    seen: dict[str, Any] = {}

    def all_serving() -> bool:  # health is re-checked every 2 s; the workers' first pull
        seen.update(answers())
        return seen == expected

    try:
        wait_for("every server to answer SERVING", all_serving, timeout=60)
    except AssertionError:
        differing = {(server, part, name): (value, expected[server][part].get(name))
                     for server, answer in seen.items() for part in ("health",)
                     for name, value in answer[part].items()
                     if value != expected[server][part].get(name)}
        services = {server: answer["services"] for server, answer in seen.items()
                    if answer["services"] != expected[server]["services"]}
        raise AssertionError(f"(seen, expected): {differing}; services: {services}") from None
    # The roles a node does not serve have no port at all.
    absent = [{"address": f"{fe.address}:{PORTS[r]}", "names": [], "ca": str(fe_cert),
               "server_name": "localhost"} for r in ("scheduler", "keys")]
    absent.append({"address": f"{sc.address}:{PORTS['frontend']}", "names": [],
                   "ca": str(cp_cert), "server_name": "localhost"})
    for answer in _probe_all(cluster, absent).values():
        assert answer["health"] == {"": "UNAVAILABLE"}


def _readiness(role: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The readiness and liveness probes of the role's container, as deployed."""
    for doc in yaml.safe_load_all((MANIFESTS / f"{role}.yaml").read_text()):
        if doc and doc["kind"] in ("Deployment", "StatefulSet"):
            container = doc["spec"]["template"]["spec"]["containers"][0]
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            return ({**container["readinessProbe"], "ports": ports},
                    {**container["livenessProbe"], "ports": ports})
    raise AssertionError(f"no workload in {role}.yaml")


def _tcp_open(cluster: Cluster, address: str, port: int) -> bool:
    code = ("import socket, sys; s = socket.create_connection((sys.argv[1], int(sys.argv[2])),"
            " timeout=5); s.close()")
    return cluster.cl.run([sys.executable, "-c", code, address, str(port)]).returncode == 0


@pytest.mark.parametrize("role", sorted(HOSTED))
def test_the_kubernetes_probes_pass_as_written_from_the_client_host(
        cluster: Cluster, role: str) -> None:
    """Each manifest's probes, run against the control plane from another host: the port
    it names is the role's, and an exec probe (``confide probe``) answers SERVING."""
    for probe in _readiness(role):
        if "exec" in probe:
            command = probe["exec"]["command"]
            assert command[:2] == ["confide", "probe"]
            host, port = command[2].rsplit(":", 1)
            assert (host, int(port)) == ("localhost", PORTS[role])
            # The pod's data dir (CONFIDE_DATA_DIR) holds its api-cert.pem: here cp's.
            out = cluster.cl.run([sys.executable, "-m", "confide", "probe",
                                  cluster.address(role), *command[3:]],
                                 env={**env(), "CONFIDE_DATA_DIR": str(cluster.cp_dir)})
            assert out.returncode == 0, out.stdout + out.stderr
            assert f"{cluster.address(role)} (server): SERVING" in out.stdout
        else:
            port = probe["tcpSocket"]["port"]
            port = probe["ports"][port] if isinstance(port, str) else port
            assert port == PORTS[role]
            assert _tcp_open(cluster, cluster.cp.address, port)
