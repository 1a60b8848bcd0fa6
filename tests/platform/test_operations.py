"""Operating ``confide serve``: health probes, reflection, metrics and logs (issue 13).

Everything here goes through the command an operator types (``confide serve``
with ``--metrics-address`` and ``--log-format json``) and the clients they
would point at it: a grpc_health_probe-style ``Health/Check`` over the same TLS
as the server's clients (the internal scheduler with a platform-CA client
certificate), a grpcurl-style listing with grpcio-reflection's Python client,
a Prometheus scrape. Threats: a log line that carries a password, token, key
or plaintext (in the clear, hex or base64); metric labels that carry user or
task ids (unbounded cardinality, and identities in the monitoring system).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import load_der_x509_certificate
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from prometheus_client.parser import text_string_to_metric_families

from confide.client import Client, ClientError, FunctionArgument, FunctionFile
from confide.keys import PlatformCA, service_dns_name
from confide.node import open_root_secret
from confide.rpc import key_pem, pin_target_name
from confide.rpc._gen import confide_v1_pb2 as v1
from confide.rpc._gen import confide_v1_pb2_grpc as v1_grpc

from ._server import Server, free_port

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
HEALTH = "grpc.health.v1.Health"
REFLECTION = "grpc.reflection.v1alpha.ServerReflection"
AUTH_API = "teaclave_authentication_service_proto.TeaclaveAuthenticationApi"
FRONTEND = "teaclave_frontend_service_proto.TeaclaveFrontend"
CONFIDE_FRONTEND = "confide.v1.ConfideFrontend"
SCHEDULER = "confide.v1.Scheduler"
KEY_SERVICE = "confide.v1.KeyService"
#: What each server hosts (and reflection must list).
HOSTED = {
    "authentication": {AUTH_API},
    "frontend": {FRONTEND, CONFIDE_FRONTEND},
    "scheduler": {SCHEDULER},
    "keys": {KEY_SERVICE},
}
ADMIN_PASSWORD = "admin-pw-" + uuid.uuid4().hex
#: glog format, as gRPC's C core writes to standard error (e.g. a refused handshake).
GRPC_CORE_LINE = re.compile(r"[IWEF]\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ [\w.]+:\d+\] ")
PY_COPY = """
def entrypoint(argv):
    data = teaclave_open('in', 'rb').read()
    with teaclave_open('out', 'wb') as f:
        f.write(data)
    return 'copied %d bytes' % len(data)
"""
PY_FAIL = """
def entrypoint(argv):
    raise ValueError('refusing: ' + teaclave_open('in', 'rb').read().decode())
"""


# -- probes -------------------------------------------------------------------------------
def _api_channel(s: Server, role: str) -> grpc.Channel:
    """What a client (or grpc_health_probe -tls -tls-ca-cert api-cert.pem) uses."""
    pem = (s.data_dir / "api-cert.pem").read_bytes()
    return grpc.secure_channel(
        f"localhost:{s.ports[role]}", grpc.ssl_channel_credentials(pem),
        options=[("grpc.ssl_target_name_override", pin_target_name(pem, "localhost")),
                 ("grpc.use_local_subchannel_pool", 1)])


def _probe_identity(s: Server, services: list[str]) -> tuple[bytes, bytes]:
    """A platform-CA client certificate (what a probe of the internal scheduler needs)."""
    ca = PlatformCA.from_root_secret(open_root_secret(s.data_dir, create=False))
    key = ec.generate_private_key(ec.SECP256R1())
    der = ca.issue_node_certificate(key.public_key(), node_id="health-probe", services=services,
                                    now=dt.datetime.now(dt.UTC))
    cert = load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    return key_pem(key), cert


def _scheduler_channel(s: Server, identity: tuple[bytes, bytes] | None) -> grpc.Channel:
    ca = PlatformCA.from_root_secret(open_root_secret(s.data_dir, create=False))
    key, cert = identity if identity is not None else (None, None)
    creds = grpc.ssl_channel_credentials(root_certificates=ca.certificate_pem(),
                                         private_key=key, certificate_chain=cert)
    return grpc.secure_channel(f"127.0.0.1:{s.ports['scheduler']}", creds, options=[
        ("grpc.ssl_target_name_override", service_dns_name("scheduler")),
        ("grpc.use_local_subchannel_pool", 1)])


def _channel(s: Server, role: str) -> grpc.Channel:
    if role == "scheduler":
        return _scheduler_channel(s, _probe_identity(s, ["monitoring"]))
    return _api_channel(s, role)


def _check(channel: grpc.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return int(stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status)


def _wait_serving(channel: grpc.Channel, service: str = "", timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while (status := _check(channel, service)) != SERVING:
        assert time.monotonic() < deadline, f"{service or 'server'} still {status}"
        time.sleep(0.2)


# -- the server of this module --------------------------------------------------------------
@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """JSON logs, metrics on, a known admin password, one worker."""
    s = Server(tmp_path_factory.mktemp("ops") / "data", workers=1,
               extra_env={"CONFIDE_ADMIN_PASSWORD": ADMIN_PASSWORD},
               extra_args=["--metrics-address", f"127.0.0.1:{free_port()}",
                           "--log-format", "json"])
    metrics_port = int(s.extra_args[1].rsplit(":", 1)[1])
    s.start()
    s.ports["metrics"] = metrics_port
    for role in HOSTED:
        with _channel(s, role) as ch:
            for name in ("", *HOSTED[role]):
                _wait_serving(ch, name)
    yield s
    s.stop()


def _admin(s: Server) -> Client:
    return s.client("admin", ADMIN_PASSWORD)


def _scrape(s: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"http://127.0.0.1:{s.ports['metrics']}/metrics", timeout=10).text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
           **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# -- health ---------------------------------------------------------------------------------
@pytest.mark.parametrize("role", sorted(HOSTED))
def test_every_server_answers_health_for_itself_and_each_hosted_service(
        ops: Server, role: str) -> None:
    with _channel(ops, role) as ch:
        assert _check(ch) == SERVING
        for name in HOSTED[role]:
            assert _check(ch, name) == SERVING
        with pytest.raises(grpc.RpcError) as e:
            _check(ch, "no.such.Service")
        assert e.value.code() is grpc.StatusCode.NOT_FOUND


def test_scheduler_health_needs_a_platform_ca_client_certificate(ops: Server) -> None:
    with _scheduler_channel(ops, None) as ch, pytest.raises(grpc.RpcError) as e:
        _check(ch)
    assert e.value.code() is grpc.StatusCode.UNAVAILABLE


def test_a_probe_certificate_reads_health_but_may_not_pull_tasks(ops: Server) -> None:
    with _scheduler_channel(ops, _probe_identity(ops, ["monitoring"])) as ch:
        assert _check(ch, SCHEDULER) == SERVING
        with pytest.raises(grpc.RpcError) as e:
            v1_grpc.SchedulerStub(ch).PullTask(
                v1.PullTaskRequest(executor_id="probe", wait_ms=0), timeout=5)
    assert e.value.code() is grpc.StatusCode.PERMISSION_DENIED


def test_without_workers_the_task_services_are_not_serving_and_stop_turns_all_off(
        tmp_path: Path) -> None:
    """Readiness semantics (docs/operations.md): the server answers, tasks cannot run;
    SIGTERM turns every status NOT_SERVING before the server goes away. The API
    certificate names every --server-name after Teaclave's extension."""
    s = Server(tmp_path / "data", workers=0,
               extra_args=["--server-name", "localhost", "--server-name", "api.example.test"]
               ).start()
    try:
        cert = x509.load_pem_x509_certificate((s.data_dir / "api-cert.pem").read_bytes())
        assert cert.extensions[0].oid.dotted_string == "2.16.840.1.113730.1.13"  # Teaclave SDK
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == ["localhost", "api.example.test"]
        with _api_channel(s, "frontend") as front, _channel(s, "scheduler") as sched:
            _wait_serving(front)
            _wait_serving(sched)
            assert _check(front, FRONTEND) == NOT_SERVING
            assert _check(front, CONFIDE_FRONTEND) == NOT_SERVING
            assert _check(sched, SCHEDULER) == NOT_SERVING
            watch = health_pb2_grpc.HealthStub(front).Watch(
                health_pb2.HealthCheckRequest(service=""), timeout=30)
            assert next(watch).status == SERVING
            assert s.proc is not None
            s.proc.send_signal(signal.SIGTERM)
            assert next(watch).status == NOT_SERVING
    finally:
        s.stop()


def _probe(*args: str) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([sys.executable, "-m", "confide", "probe", *args], capture_output=True,
                         text=True, timeout=60, check=False)
    out.stderr = " ".join(out.stderr.split())  # rich wraps at the terminal's width
    return out


def test_confide_probe_is_an_exec_probe_for_every_server(ops: Server, tmp_path: Path) -> None:
    """``confide probe`` (deploy/k8s' readiness probes): 0 when SERVING, 3 otherwise."""
    front = f"localhost:{ops.ports['frontend']}"
    ok = _probe(front, "-d", str(ops.data_dir))
    assert ok.returncode == 0 and "SERVING" in ok.stdout
    named = _probe(front, "-d", str(ops.data_dir), "--service", FRONTEND)
    assert named.returncode == 0, named.stderr
    unknown = _probe(front, "-d", str(ops.data_dir), "--service", "no.such.Service")
    assert unknown.returncode == 3 and "no service named 'no.such.Service'" in unknown.stderr
    closed = _probe(f"localhost:{free_port()}", "-d", str(ops.data_dir), "--timeout", "1")
    assert closed.returncode == 3 and "UNAVAILABLE" in closed.stderr
    missing = _probe(front, "-d", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    # the scheduler's mutual TLS: a platform-CA certificate gets in, none does not
    ca = PlatformCA.from_root_secret(open_root_secret(ops.data_dir, create=False))
    (tmp_path / "ca.pem").write_bytes(ca.certificate_pem())
    key, cert = _probe_identity(ops, ["monitoring"])
    (tmp_path / "probe.key").write_bytes(key)
    (tmp_path / "probe.pem").write_bytes(cert)
    sched = [f"127.0.0.1:{ops.ports['scheduler']}", "--ca", str(tmp_path / "ca.pem"),
             "--server-name", service_dns_name("scheduler")]
    mtls = _probe(*sched, "--cert", str(tmp_path / "probe.pem"),
                  "--key", str(tmp_path / "probe.key"))
    assert mtls.returncode == 0, mtls.stderr
    assert _probe(*sched).returncode == 3
    assert _probe(*sched, "--cert", str(tmp_path / "probe.pem")).returncode == 1


# -- reflection -----------------------------------------------------------------------------
@pytest.mark.parametrize("role", sorted(HOSTED))
def test_reflection_lists_the_services_of_every_server(ops: Server, role: str) -> None:
    with _channel(ops, role) as ch:
        db = ProtoReflectionDescriptorDatabase(ch)
        assert set(db.get_services()) == HOSTED[role] | {HEALTH, REFLECTION}
        pool = DescriptorPool(db)
        for name in HOSTED[role]:
            assert pool.FindServiceByName(name).methods


def test_reflection_describes_teaclave_messages(ops: Server) -> None:
    with _channel(ops, "frontend") as ch:
        pool = DescriptorPool(ProtoReflectionDescriptorDatabase(ch))
        create = pool.FindServiceByName(FRONTEND).methods_by_name["CreateTask"]
        assert create.input_type.full_name == "teaclave_frontend_service_proto.CreateTaskRequest"
        assert "function_id" in create.input_type.fields_by_name


# -- a full run: logs and metrics --------------------------------------------------------------
class _Secrets:
    """Every secret and plaintext one run handles, to look for in the logs."""

    def __init__(self) -> None:
        self.items: dict[str, bytes] = {}

    def add(self, name: str, value: bytes | str) -> bytes:
        data = value.encode() if isinstance(value, str) else value
        self.items[name] = data
        return data

    def forms(self) -> Iterator[tuple[str, str]]:
        for name, data in self.items.items():
            yield name, data.decode("latin-1")
            yield f"{name} (hex)", data.hex()
            yield f"{name} (HEX)", data.hex().upper()
            yield f"{name} (base64)", base64.b64encode(data).decode().rstrip("=")
            yield f"{name} (base64url)", base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.fixture(scope="module")
def full_run(ops: Server) -> _Secrets:
    """Users, an attested login by DNS name, encrypted data in and out, a task argument,
    a function that fails with its input in the message, a wrong password."""
    secrets = _Secrets()
    secrets.add("admin password", ADMIN_PASSWORD)
    alice_pw = secrets.add("alice password", "alice-pw-" + uuid.uuid4().hex).decode()
    wrong_pw = secrets.add("wrong password", "wrong-pw-" + uuid.uuid4().hex).decode()
    plain = secrets.add("input plaintext", b"plaintext-" + os.urandom(24).hex().encode())
    key = secrets.add("input key", os.urandom(32))
    out_key = secrets.add("output key", os.urandom(32))
    argument = secrets.add("task argument", "argument-" + uuid.uuid4().hex)
    secrets.add("root secret seal key", (ops.data_dir / "sim-sealing.key").read_bytes())
    alice = f"alice-{uuid.uuid4().hex[:8]}"
    with _admin(ops) as admin:
        admin.register_user(alice, alice_pw, "DataOwner", "org")
        copy = admin.register_function(
            "copy", executor_type="python", payload=PY_COPY.encode(),
            inputs=[FunctionFile("in")], outputs=[FunctionFile("out")])
        fail = admin.register_function("fail", executor_type="python",
                                       payload=PY_FAIL.encode(), inputs=[FunctionFile("in")])
        echo = admin.register_function("builtin-echo", executor_type="builtin",
                                       arguments=[FunctionArgument("message")])
    # An attested connect by DNS name: the TLS server name the server must know.
    client = Client.connect_data_dir(ops.data_dir, "localhost",
                                     authentication_port=ops.ports["authentication"],
                                     frontend_port=ops.ports["frontend"])
    with pytest.raises(ClientError):
        client.login(alice, wrong_pw)
    secrets.add("alice token", client.login(alice, alice_pw))
    with client:
        upload = client.upload_encrypted(plain, file_name="in.bin", schema="aes-gcm-256",
                                         key=key)
        out = client.new_output(file_name="out.bin", schema="aes-gcm-256", key=out_key)
        iid = client.register_upload(upload)
        tid = client.create_task(copy, {}, executor="mesapy",
                                 inputs_ownership={"in": [alice]},
                                 outputs_ownership={"out": [alice]})
        client.assign_data(tid, inputs={"in": iid}, outputs={"out": out.data_id})
        client.approve_task(tid)
        client.invoke_task(tid)
        task = client.wait(tid, 60)
        assert task.ok, task.reason
        assert client.download_decrypted(out, task.tags_map["out"]) == plain
        tid = client.create_task(fail, {}, executor="mesapy", inputs_ownership={"in": [alice]})
        client.assign_data(tid, inputs={"in": client.register_upload(upload)})
        client.approve_task(tid)
        client.invoke_task(tid)
        failed = client.wait(tid, 60)
        # Teaclave's MesaPy contract: an exception is a result, not the message (spec §5.7).
        assert failed.return_value == b"MESAPY_EXEC_ERROR"
        tid = client.create_task(echo, {"message": argument.decode()}, executor="builtin")
        client.invoke_task(tid)
        assert client.wait(tid, 60).return_value == argument
    time.sleep(0.5)  # let the worker's last lines reach the log
    return secrets


def _log_text(s: Server) -> str:
    assert s.log_path is not None
    return s.log_path.read_bytes().decode("latin-1")


def test_logs_of_a_full_run_hold_no_password_token_key_or_plaintext(
        ops: Server, full_run: _Secrets) -> None:
    text = _log_text(ops)
    assert "worker" in text and "executor_id" in text  # the workers' lines are in it too
    leaks = [name for name, form in full_run.forms() if form in text]
    assert leaks == []


def test_no_tls_server_name_mismatch_in_a_full_run(ops: Server, full_run: _Secrets) -> None:
    assert "No match found for server name" not in _log_text(ops)


def test_json_logs_are_one_object_per_line_with_request_and_task_ids(
        ops: Server, full_run: _Secrets) -> None:
    events = []
    for line in _log_text(ops).splitlines():
        if GRPC_CORE_LINE.match(line):  # gRPC's C core writes its own lines (operations.md)
            continue
        event = json.loads(line)
        assert {"ts", "level", "process", "logger", "msg"} <= event.keys(), line
        events.append(event)
    assert {e["process"] for e in events} == {"server", "worker"}
    assert any(e.get("request_id") for e in events if e["process"] == "server")
    assert any(e.get("task_id") for e in events if e["process"] == "worker")


def test_metrics_count_rpcs_tasks_and_the_workers_work(ops: Server, full_run: _Secrets
                                                       ) -> None:
    deadline = time.monotonic() + 10
    while _value(m := _scrape(ops), "confide_tasks", state="finished") < 3:
        assert time.monotonic() < deadline  # refreshed every health check (2 s)
        time.sleep(0.5)
    assert _value(m, "confide_grpc_server_handled_total", grpc_service=FRONTEND,
                  grpc_method="CreateTask", grpc_code="OK") >= 3
    assert _value(m, "confide_grpc_server_handled_total", grpc_service=AUTH_API,
                  grpc_method="UserLogin", grpc_code="UNAUTHENTICATED") >= 1
    assert _value(m, "confide_grpc_server_handling_seconds_count", grpc_service=SCHEDULER,
                  grpc_method="PullTask") >= 1
    assert _value(m, "confide_login_failures_total", reason="bad_password") >= 1
    assert _value(m, "confide_tasks", state="finished") >= 3
    assert _value(m, "confide_tasks_completed_total", executor="mesapy", outcome="ok") >= 1
    assert _value(m, "confide_task_run_seconds_count", executor="builtin", outcome="ok") >= 1
    assert _value(m, "confide_scheduler_queue_wait_seconds_count", executor="builtin") >= 1
    assert _value(m, "confide_db_transaction_seconds_count", kind="write") > 0
    assert _value(m, "confide_attestation_appraisals_total", purpose="enrolment",
                  result="ok") >= 1
    assert _value(m, "confide_attestation_appraisals_total", purpose="certificate",
                  result="ok") >= 1
    assert _value(m, "confide_health_check_ok", check="workers") == 1
    # Recorded in the worker process, served by the server's endpoint:
    assert _value(m, "confide_worker_tasks_total", executor="mesapy", outcome="ok") >= 1
    assert _value(m, "confide_worker_staged_bytes_total", direction="in") > 0
    assert _value(m, "confide_worker_staged_bytes_total", direction="out") > 0
    assert _value(m, "confide_worker_slots", state="busy") + \
        _value(m, "confide_worker_slots", state="free") == 4
    assert _value(m, "confide_worker_enrolments_total", result="ok") >= 1


def test_metric_labels_carry_no_ids_and_no_name_is_exported_twice(
        ops: Server, full_run: _Secrets) -> None:
    text = httpx.get(f"http://127.0.0.1:{ops.ports['metrics']}/metrics", timeout=10).text
    families = [f.name for f in text_string_to_metric_families(text)]
    assert len(families) == len(set(families))
    values = {v for f in text_string_to_metric_families(text) for s in f.samples
              for v in s.labels.values()}
    for marker in ("task-", "function-", "input-", "output-", "alice-", "executor-"):
        assert not [v for v in values if marker in v], marker
    assert not [name for name, form in full_run.forms() if form in text]


# -- options ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "message"), [
    (["--metrics-address", "9464"], "metrics address must be HOST:PORT"),
    (["--metrics-address", "127.0.0.1:99999"], "metrics port out of range"),
    (["--log-format", "xml"], "--log-format must be human or json"),
    (["--server-name", "127.0.0.1"], "is an IP address"),
    (["--server-name", "bad_name!"], "is not a DNS name"),
])
def test_bad_operations_options_are_refused_at_start(tmp_path: Path, args: list[str],
                                                     message: str) -> None:
    s = Server(tmp_path / "data", workers=0, extra_args=args)
    with pytest.raises(RuntimeError) as e:
        s.start(timeout=20)
    assert message in str(e.value)
    assert "Traceback" not in str(e.value)


def test_metrics_port_already_taken_is_a_clear_error(tmp_path: Path, ops: Server) -> None:
    taken = f"127.0.0.1:{ops.ports['metrics']}"
    s = Server(tmp_path / "data", workers=0, extra_args=["--metrics-address", taken])
    with pytest.raises(RuntimeError) as e:
        s.start(timeout=20)
    assert f"cannot serve metrics on {taken}" in str(e.value)

