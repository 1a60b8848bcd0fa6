"""Workers enrol with the key service (attested evidence) before they may pull tasks.

Threats: a worker running other code (unlisted measurement), a process that
never enrolled, replayed enrolment evidence, evidence bound to other keys,
a node asking for services it may not host, a key service running other code.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from confide.attestation import AppraisalPolicy, EnclaveInfo, UnsafeTrustSimRoot
from confide.attestation.sim import SimAttester
from confide.execution._enrol import (
    EnrolmentRefused,
    _pinned_channel,
    attest_key_service,
    enrol,
    key_service_policy,
)
from confide.execution._worker import EXIT_ENROLMENT_REFUSED, WorkerConfig
from confide.keys import (
    EnrolmentChallenge,
    EnrolmentKeys,
    PlatformCA,
    make_enrolment_request,
    service_dns_name,
)
from confide.node import open_root_secret
from confide.rpc._gen import confide_v1_pb2 as v1
from confide.rpc._gen import confide_v1_pb2_grpc as v1_grpc

from ._server import Server


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def node_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server without its own workers: this module plays the worker nodes."""
    s = Server(tmp_path_factory.mktemp("enrol") / "data", workers=0).start()
    yield s
    s.stop()


def _key_service(s: Server) -> str:
    return f"127.0.0.1:{s.ports['keys']}"


def _ca_pem(s: Server) -> bytes:
    return PlatformCA.from_root_secret(open_root_secret(s.data_dir, create=False)).certificate_pem()


def _attester(s: Server, package_root: Path | None = None) -> SimAttester:
    return SimAttester(s.data_dir / "sim-attester", "sgx", package_root=package_root)


@pytest.fixture
def other_code(tmp_path: Path) -> Path:
    code = tmp_path / "other-build"
    code.mkdir()
    (code / "__init__.py").write_text("# not the audited code\n")
    return code


def _scheduler(s: Server, *, key_pem: bytes | None = None,
               cert_pem: bytes | None = None) -> v1_grpc.SchedulerStub:
    creds = grpc.ssl_channel_credentials(root_certificates=_ca_pem(s), private_key=key_pem,
                                         certificate_chain=cert_pem)
    channel = grpc.secure_channel(f"127.0.0.1:{s.ports['scheduler']}", creds, options=[
        ("grpc.ssl_target_name_override", service_dns_name("scheduler")),
        ("grpc.use_local_subchannel_pool", 1)])
    return v1_grpc.SchedulerStub(channel)


class _RawEnrolment:
    """The wire protocol by hand, to send exactly what a hostile node would."""

    def __init__(self, s: Server, attester: SimAttester) -> None:
        pinned = attest_key_service(_key_service(s), key_service_policy(attester), _now())
        self.stub = v1_grpc.KeyServiceStub(_pinned_channel(_key_service(s), pinned))
        self.attester = attester

    def request(self, *, services: tuple[str, ...] = ("execution",),
                keys: EnrolmentKeys | None = None) -> v1.EnrolRequest:
        answer = self.stub.Challenge(v1.EnrolChallengeRequest(), timeout=10)
        challenge = EnrolmentChallenge(answer.nonce, _now() + dt.timedelta(minutes=5))
        req = make_enrolment_request(challenge, keys or EnrolmentKeys.generate(),
                                     node_id="node-under-test", services=services,
                                     get_quote=lambda rd: self.attester.evidence(rd).quote)
        return v1.EnrolRequest(node_id=req.node_id, services=list(req.services),
                               nonce=req.nonce, tls_public_key_der=req.tls_public_key_der,
                               hpke_public_key=req.hpke_public_key, quote=req.quote)

    def refused(self, request: v1.EnrolRequest) -> str:
        """Send ``request``; it must be refused; returns the refusal text."""
        with pytest.raises(grpc.RpcError) as e:
            response = self.stub.Enrol(request, timeout=10)
            # Unreachable when refused; if it were not, the secret would be here.
            assert not response.encrypted_root_secret
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        return str(e.value.details())


def test_enrolled_worker_receives_its_certificate_and_no_secret_and_may_pull(
        node_server: Server) -> None:
    node = enrol(key_service=_key_service(node_server), node_id="executor-test",
                 attester=_attester(node_server), ca_pem=_ca_pem(node_server), clock=_now)
    assert node.root_secret is None  # a worker opens no database: it gets no root secret
    der = x509.load_pem_x509_certificate(node.cert_pem).public_bytes(serialization.Encoding.DER)
    ca = PlatformCA.from_root_secret(open_root_secret(node_server.data_dir, create=False))
    assert node.ca_pem == ca.certificate_pem()
    assert ca.verify_node_certificate(der, _now()) == {"execution"}
    assert node.not_after - _now() <= dt.timedelta(hours=24)  # short-lived
    stub = _scheduler(node_server, key_pem=node.key_pem, cert_pem=node.cert_pem)
    reply = stub.PullTask(v1.PullTaskRequest(executor_id="executor-test", wait_ms=0), timeout=10)
    assert reply.has_task is False
    # Another executor's id is refused: the id must be the caller's own node id.
    with pytest.raises(grpc.RpcError) as e:
        stub.PullTask(v1.PullTaskRequest(executor_id="executor-other", wait_ms=0), timeout=10)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # A supervised worker of an earlier server generation (enrolled under that id) is refused.
    stale_id = "executor-0000000000000000-01234567-89ab-cdef-0123-456789abcdef"
    stale = enrol(key_service=_key_service(node_server), node_id=stale_id,
                  attester=_attester(node_server), ca_pem=_ca_pem(node_server), clock=_now)
    stale_stub = _scheduler(node_server, key_pem=stale.key_pem, cert_pem=stale.cert_pem)
    with pytest.raises(grpc.RpcError) as e:
        stale_stub.PullTask(v1.PullTaskRequest(executor_id=stale_id, wait_ms=0), timeout=10)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "earlier server generation" in str(e.value.details())


def test_rejects_worker_with_unlisted_measurement(node_server: Server, other_code: Path) -> None:
    attester = _attester(node_server, package_root=other_code)
    raw = _RawEnrolment(node_server, attester)
    reason = raw.refused(raw.request())
    assert "measurement-not-listed" in reason and "not listed for role execution" in reason
    # and the node's own client gives up for good
    with pytest.raises(EnrolmentRefused, match="refused enrolment"):
        enrol(key_service=_key_service(node_server), node_id="executor-x", attester=attester,
              ca_pem=_ca_pem(node_server), clock=_now)


def test_rejects_pull_without_client_certificate(node_server: Server) -> None:
    with pytest.raises(grpc.RpcError) as e:
        _scheduler(node_server).PullTask(v1.PullTaskRequest(executor_id="x", wait_ms=0),
                                         timeout=10)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE  # the TLS handshake is refused


def test_rejects_pull_with_a_self_made_certificate(node_server: Server) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "executor-forged")])
    now = _now()
    cert = (x509.CertificateBuilder().issuer_name(name).subject_name(name)
            .serial_number(1).public_key(key.public_key())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier("confide://service/execution")]), critical=False)
            .sign(key, hashes.SHA256()))
    stub = _scheduler(node_server, key_pem=key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), cert_pem=cert.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(grpc.RpcError) as e:
        stub.PullTask(v1.PullTaskRequest(executor_id="x", wait_ms=0), timeout=10)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE


def test_rejects_replayed_enrolment_evidence(node_server: Server) -> None:
    raw = _RawEnrolment(node_server, _attester(node_server))
    request = raw.request(services=("scheduler",))  # a role that receives the secret
    first = raw.stub.Enrol(request, timeout=10)
    assert first.encrypted_root_secret
    assert "nonce-unknown-or-used" in raw.refused(request)
    worker = raw.stub.Enrol(raw.request(), timeout=10)
    assert worker.node_certificate_der and not worker.encrypted_root_secret


def test_rejects_evidence_bound_to_other_keys(node_server: Server) -> None:
    raw = _RawEnrolment(node_server, _attester(node_server))
    request = raw.request()
    request.hpke_public_key = EnrolmentKeys.generate().hpke_public_key  # attacker's key
    assert "evidence-binding-mismatch" in raw.refused(request)


def test_rejects_a_worker_asking_for_other_services(node_server: Server) -> None:
    raw = _RawEnrolment(node_server, _attester(node_server))
    assert "unknown-role: no such role storage" in raw.refused(
        raw.request(services=("execution", "storage")))


def test_worker_refuses_a_key_service_running_other_code(node_server: Server) -> None:
    attester = _attester(node_server)
    expects_other = AppraisalPolicy(
        [UnsafeTrustSimRoot(attester.root_certificate_der)],
        EnclaveInfo({"teaclave_scheduler_service": {
            "mr_enclave": "00" * 32, "mr_signer": attester.measurements["mr_signer"]}}))
    with pytest.raises(EnrolmentRefused, match="failed attestation"):
        attest_key_service(_key_service(node_server), expects_other, _now())


def test_worker_process_with_unlisted_measurement_exits_without_pulling(
        node_server: Server, other_code: Path) -> None:
    cfg = WorkerConfig(
        scheduler=f"127.0.0.1:{node_server.ports['scheduler']}",
        key_service=_key_service(node_server), executor_id="executor-unlisted",
        ca_pem=_ca_pem(node_server), sim_state_dir=str(node_server.data_dir / "sim-attester"),
        server_name=service_dns_name("scheduler"))
    env = {**os.environ, "CONFIDE_SIM_MEASURE_ROOT": str(other_code)}
    proc = subprocess.run([sys.executable, "-m", "confide.execution._worker"],
                          input=cfg.to_cbor(), capture_output=True, env=env, timeout=60)
    log = proc.stderr.decode()
    assert proc.returncode == EXIT_ENROLMENT_REFUSED, log
    assert "not enrolled" in log and "pulling from" not in log
    server_log = node_server.log_path.read_text() if node_server.log_path else ""
    assert "enrolment of 'executor-unlisted'" in server_log


def test_supervisor_hands_workers_no_secret(tmp_path: Path) -> None:
    from confide.node import Platform, ServerConfig

    platform = Platform(ServerConfig(data_dir=tmp_path / "data", authentication_port=0,
                                     frontend_port=0, scheduler_port=0, key_service_port=0,
                                     blob_port=None, workers=0))
    platform.start()
    try:
        bootstrap = platform._worker_config("executor-probe").to_cbor()
        secret = open_root_secret(tmp_path / "data", create=False).expose_secret_bytes()
        assert b"PRIVATE KEY" not in bootstrap
        assert secret not in bootstrap
        assert set(WorkerConfig.from_cbor(bootstrap).__dict__) == {
            "scheduler", "key_service", "executor_id", "ca_pem", "sim_state_dir",
            "server_name", "slots", "python_prestart", "blob_store_port", "fusion_dir",
            "file_roots", "extra_loopback_ports", "log_level", "log_format", "limits"}
    finally:
        platform.stop()
