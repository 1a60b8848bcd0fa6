"""A confide node: the control-plane roles it serves (all of them by default:
the all-in-one server), the database, the gRPC endpoints and the supervised
worker pool. A node that does not hold the key service joins the platform by
enrolling with it over the network (docs/operations.md, "Distributed shape")."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from http.server import ThreadingHTTPServer
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .._units import parse_duration
from ..api import Inline, RpcLoop, ServerHealth, ServingGate, build_server
from ..api.authentication import add_authentication_servicers
from ..api.frontend import add_frontend_servicers
from ..api.keys import add_key_servicer
from ..api.scheduler import add_scheduler_servicer
from ..attestation import AttestedCertificate, renewal_due
from ..execution._enrol import (
    EnrolmentRefused,
    KeyServicesUnreachable,
    enrol_through_any,
    key_service_addresses,
)
from ..execution._worker import WorkerConfig
from ..keys import (
    NODE_ROLES,
    KeysError,
    PlatformCA,
    RoleMeasurements,
    RootSecret,
    SimSealer,
    load_root_secret,
    service_dns_name,
    store_root_secret,
)
from ..rpc import PemPair, address_list, key_pem
from ..rpc._keepalive import server_options as keepalive_server_options
from ..services._notify import Notifier
from ..services.access_control import AccessControl
from ..services.attestation_report import make_report_server, server_tls_context
from ..services.authentication import (
    AuthenticationService,
    LoginThrottle,
    SharedFailures,
    TokenSigner,
)
from ..services.blobstore import BlobStore
from ..services.frontend import Frontend, peer_ip
from ..services.keys import KeyService, NodeRevocations
from ..services.management import Context, Management
from ..services.scheduler import AgreementError, Scheduler, SchedulerAgreement
from ..storage import StorageError
from ..telemetry import (
    LOG_FORMATS,
    REGISTRY,
    MetricsAddressError,
    MetricsEndpoint,
    WorkerMetrics,
    parse_metrics_address,
    prepare_worker_metrics_dir,
)
from ._attest import RemoteReports, SimNode
from ._config import ALL_ROLES, DEFAULT_ADMIN_PASSWORD, ServerConfig
from ._keys import open_platform_keys
from ._monitor import HealthMonitor
from ._readiness import rule_for
from ._supervisor import Supervisor

__all__ = ["SHUTTING_DOWN", "ConfigError", "Platform", "open_root_secret", "shutdown_reason"]

_log = logging.getLogger("confide.server")
SIM_WARNING = ("sim TEE: NO protection against the operator — keys are in plain files and "
               "evidence is signed by a local test root. For development only.")


#: What a client RPC gets (UNAVAILABLE) once the server is shutting down.
SHUTTING_DOWN = "the server is shutting down; retry once it is back"
_MAX_GRACE_S = 3600.0
_DRAIN_POLL_S = 0.2


def shutdown_reason(grace_s: float, *, cut_short: bool) -> str:
    """The reason a task still running at the end of a shutdown's grace period fails with."""
    if cut_short:
        return ("Runtime Error: Server Shutdown (still running when a second stop signal "
                "ended the shutdown grace period)")
    return (f"Runtime Error: Server Shutdown (still running after the {grace_s:g} s "
            "shutdown grace period)")


class ConfigError(Exception):
    """The server cannot start with this configuration."""


_ROOT_SECRET_FILE = "root-secret.sealed"  # noqa: S105 - a file name


def _has_root_secret(data_dir: Path) -> bool:
    return (data_dir / _ROOT_SECRET_FILE).exists()


def seal_root_secret(data_dir: Path, secret: RootSecret) -> None:
    """Keep ``secret`` in ``data_dir``, sealed to this node."""
    store_root_secret(data_dir / _ROOT_SECRET_FILE, secret,
                      SimSealer(data_dir / "sim-sealing.key"))


def open_root_secret(data_dir: Path, *, create: bool) -> RootSecret:
    """Unseal the platform root secret kept in ``data_dir``, creating it if asked."""
    if _has_root_secret(data_dir):
        return load_root_secret(data_dir / _ROOT_SECRET_FILE,
                                SimSealer(data_dir / "sim-sealing.key"))
    if not create:
        raise ConfigError(f"no platform secret in {data_dir}")
    secret = RootSecret.generate()
    seal_root_secret(data_dir, secret)
    _log.info("created a new platform root secret")
    return secret


def _pem_pair(cert: AttestedCertificate) -> PemPair:
    return PemPair(cert.private_key_pem(), cert.certificate_pem())


class _RotatingCredentials:
    """Server credentials whose certificate can be swapped while serving.

    grpcio calls each credentials' fetcher before every TLS handshake; a
    fetcher returns the new configuration once after each :meth:`rotate`.
    """

    def __init__(self, pair: PemPair, *, client_ca: bytes | None = None) -> None:
        """``client_ca``: require a client certificate issued by this CA (mutual TLS)."""
        self._lock = threading.Lock()
        self._pair = pair
        self._client_ca = client_ca
        self._version = 0

    @property
    def pair(self) -> PemPair:
        with self._lock:
            return self._pair

    def rotate(self, pair: PemPair) -> None:
        with self._lock:
            self._pair, self._version = pair, self._version + 1

    def _config(self, pair: PemPair) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration([(pair.key_pem, pair.cert_pem)],
                                                         root_certificates=self._client_ca)

    def credentials(self) -> grpc.ServerCredentials:
        with self._lock:
            seen = [self._version]
            initial = self._config(self._pair)

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            with self._lock:
                if self._version == seen[0]:
                    return None
                seen[0] = self._version
                return self._config(self._pair)

        return grpc.dynamic_ssl_server_credentials(
            initial, fetch, require_client_authentication=self._client_ca is not None)


_AUDIT_REPEAT_S = 60.0
_AUDIT_REPEAT_KEYS = 10_000

_DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*")
_MAX_SERVER_NAMES = 16


def _check_server_names(names: Sequence[str]) -> None:
    if not names:
        raise ConfigError("give at least one server name (the API certificate's DNS name)")
    if len(names) > _MAX_SERVER_NAMES:
        raise ConfigError(f"at most {_MAX_SERVER_NAMES} server names, not {len(names)}")
    for name in names:
        try:
            ipaddress.ip_address(name)
        except ValueError:
            pass
        else:
            raise ConfigError(f"server name {name!r} is an IP address: clients dialling an "
                              "address send no server name, give DNS names only")
        if len(name) > 253 or not _DNS_NAME.fullmatch(name):
            raise ConfigError(f"server name {name!r} is not a DNS name")


def _check_operations(config: ServerConfig) -> None:
    """The observability options (docs/operations.md)."""
    _check_server_names(config.server_names)
    if config.log_format not in LOG_FORMATS:
        raise ConfigError(f"log format must be one of {', '.join(LOG_FORMATS)}, "
                          f"not {config.log_format!r}")
    if config.metrics_address is not None:
        try:
            parse_metrics_address(config.metrics_address)
        except MetricsAddressError as e:
            raise ConfigError(str(e)) from e
    if not 0.1 <= config.health_check_s <= 300:
        raise ConfigError(f"health check interval must be 0.1..300 s: {config.health_check_s}")
    if not 0 <= config.shutdown_grace_s <= _MAX_GRACE_S:
        raise ConfigError(f"shutdown grace must be 0..{_MAX_GRACE_S:g} s: "
                          f"{config.shutdown_grace_s:g}")
    try:
        parse_duration(config.key_rotate_after)
    except ValueError as e:
        raise ConfigError(f"keys.rotate_after: {e}") from e
    if not 0.1 <= config.key_check_s <= 3600:
        raise ConfigError(f"keys.check_interval_s must be 0.1..3600 s: {config.key_check_s}")


def _check_roles(config: ServerConfig) -> None:
    if not config.services:
        raise ConfigError(f"give at least one role to serve: {', '.join(ALL_ROLES)}")
    unknown = sorted(set(config.services) - set(ALL_ROLES))
    if unknown:
        raise ConfigError(f"unknown role {', '.join(unknown)}; roles are {', '.join(ALL_ROLES)}")
    if "keys" not in config.services and config.key_service_address is None:
        raise ConfigError("a node without the keys role joins through a key service: give "
                          "--keys HOST:PORT")
    if config.attestation_service_port is not None and "keys" not in config.services:
        raise ConfigError("--attestation-service-port: only a node with the keys role serves "
                          "the attestation report service")
    if config.key_service_address is not None:
        try:
            key_service_addresses(config.key_service_address)
        except ValueError as e:
            raise ConfigError(f"--keys must be {e}") from None


def _remote_reports(config: ServerConfig) -> RemoteReports | None:
    """``--attestation-service HOST:PORT`` with ``--attestation-service-ca FILE``."""
    address, ca = config.attestation_service_address, config.attestation_service_ca
    if address is None and ca is None:
        return None
    if address is None or ca is None:
        raise ConfigError("--attestation-service and --attestation-service-ca go together: "
                          "the service's HOST:PORT and its AS root (the keys node's "
                          "as-root-ca.pem)")
    try:
        (address,) = address_list(address)
    except ValueError:
        raise ConfigError(f"--attestation-service must be HOST:PORT, not {address!r}") from None
    host, _, port = address.rpartition(":")
    try:
        root = ca.read_bytes()
        x509.load_pem_x509_certificate(root)
    except (OSError, ValueError) as e:
        raise ConfigError(f"--attestation-service-ca {ca}: not a PEM certificate ({e})") from e
    return RemoteReports(host.strip("[]"), int(port), root)


def _dial_host(bind_host: str) -> str:
    """The address local processes dial for a server bound to ``bind_host``."""
    if bind_host in ("0.0.0.0", ""):  # noqa: S104 - recognising a wildcard, not binding one
        return "127.0.0.1"
    if bind_host == "::":
        return "::1"
    return bind_host


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Platform:
    """One all-in-one confide server. ``start()`` binds the ports and returns."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        if config.admin_password is None and config.tee != "sim":
            raise ConfigError("refusing the default admin password outside the sim TEE; "
                              "set --admin-password or CONFIDE_ADMIN_PASSWORD")
        if config.tee != "sim":
            raise ConfigError(f"TEE {config.tee!r} is not supported by the all-in-one server yet")
        _log.warning(SIM_WARNING)
        for port in config.file_agent_loopback_ports:
            if not 0 < port < 65536:
                raise ConfigError(f"invalid loopback port for the file agent: {port}")
        for root in config.file_roots:
            if not Path(root).is_dir():
                raise ConfigError(f"file root is not a directory: {root}")
        prestart, cap = config.worker_python_prestart, config.limits.python_max_prestarted
        if prestart is not None and not 0 <= prestart <= cap:
            raise ConfigError(f"python prestart must be between 0 and {cap}: {prestart}")
        _check_operations(config)
        _check_roles(config)
        self.roles = frozenset(config.services)
        data = config.data_dir
        data.mkdir(parents=True, exist_ok=True)
        os.chmod(data, 0o700)
        self.node = SimNode(data, clock=lambda: dt.datetime.now(dt.UTC), limits=config.limits,
                            attester_dir=config.sim_attester_dir,
                            reports=_remote_reports(config))
        self.node_id = f"{socket.gethostname()}/{'+'.join(sorted(self.roles))}"
        self.identity: PemPair | None = None  # the certificate enrolment gave this node
        # A further key service that started from its sealed secret, no peer having
        # checked its evidence and revocation: it checks the revocation list itself.
        self._unchecked_by_peers = False
        if "keys" not in self.roles:
            secret = self._join(config)
        elif config.key_service_address is None:
            secret = open_root_secret(data, create=True)
        else:
            secret = self._join_as_key_replica(config)
        clock = time.time
        try:
            keys = open_platform_keys(secret, config.db_url, clock=clock,
                                      synchronous=config.sqlite_synchronous)
        except KeysError as e:
            raise ConfigError(f"cannot open the keyring: {e}") from e
        except StorageError as e:
            raise ConfigError(f"cannot open the database: {e}") from e
        self.db, self.audit, self.key_rotation = keys.db, keys.audit, keys.rotation
        self._rotate_after_s = parse_duration(config.key_rotate_after)
        limits = config.limits
        # Failed logins are counted in the database, so that every authentication
        # replica sharing it sees them (docs/security.md, "logins").
        throttle = LoginThrottle(limits, time.monotonic, shared=SharedFailures(
            self.db, secret.derive("login-throttle", 32), limits, clock))
        self.auth = AuthenticationService(
            self.db, TokenSigner(keys.live.view("token"), config.token_lifetime_s),
            clock=clock, limits=limits, audit=self.audit, throttle=throttle)
        if "authentication" in self.roles:
            self._ensure_admin(config)
        # A node serving only some roles shares the work with other processes: on
        # PostgreSQL it announces new work and ended tasks to them (LISTEN/NOTIFY).
        shared = self.db.postgres and self.roles != frozenset(ALL_ROLES)
        self.notifier = Notifier(publish=self.db.notify if shared else None)
        # Each start is a generation: workers left over by an earlier one are refused.
        self.generation = secrets.token_hex(8)
        self.scheduler = Scheduler(self.db, self.notifier, clock=clock,
                                   executor_timeout_s=config.executor_timeout_s,
                                   generation=self.generation)
        self.agreement = self._agree(config, clock) \
            if "scheduler" in self.roles and self.db.postgres else None
        if self.db.postgres:
            # Another process or host sharing the database (a frontend role) wakes
            # this scheduler's idle pulls and WaitTask callers through it.
            self.db.listen("work", lambda _payload: self.notifier.work_available(local=True))
            self.db.listen("task_ended", lambda task_id: self.notifier.task_ended(
                task_id, local=True) if task_id else None)
        self.management = Management(Context(self.db, self.notifier, limits, clock),
                                     role_of=self.auth.role_of)
        self.frontend = Frontend(self.auth, AccessControl(), self.audit)
        self.ca = PlatformCA.from_root_secret(secret)
        try:
            self._attested = self.node.issue_certificate(config.server_names)
        except ConnectionError as e:  # --attestation-service unreachable or refusing
            raise ConfigError(str(e)) from e
        self._api_creds = _RotatingCredentials(_pem_pair(self._attested))
        self.role_measurements = RoleMeasurements(self.node.role_tables())
        self.revocations = NodeRevocations(self.db)
        if self._unchecked_by_peers:
            try:
                self._not_revoked(self.node_id)
            except KeysError as e:
                raise ConfigError(f"cannot serve the keys role: {e}") from e
        self.keys = KeyService(secret, self.node.enrolment_appraiser(),
                               authorize_services=self._authorize_roles,
                               check_node=self._not_revoked,
                               node_certificate_lifetime=dt.timedelta(hours=24), limits=limits)
        self.fusion_dir = data / "fusion"
        self.fusion_dir.mkdir(mode=0o700, exist_ok=True)
        # The blob store runs with the frontend role (it signs the upload URLs).
        blob_port = config.blob_port if "frontend" in self.roles else None
        self.blobs = None if blob_port is None else BlobStore(
            data, keys.live.view("presign"), limits=limits, host=config.host,
            port=blob_port)
        self._servers: list[grpc.aio.Server] = []
        self._report_server: ThreadingHTTPServer | None = None
        self._sched_creds: _RotatingCredentials | None = None
        self._rpc: RpcLoop | None = None
        self._stopping = threading.Event()
        self._stop_requests = 0  # stop signals received (request_stop; a plain int)
        self._stopped = False
        # Closed at shutdown: the client APIs refuse new RPCs (the scheduler does not).
        self._gate = ServingGate()
        self.monitor: HealthMonitor | None = None
        self.metrics: MetricsEndpoint | None = None
        self._worker_metrics: WorkerMetrics | None = None
        # Workers record their metrics in files here only when metrics are served.
        metrics_dir = data / "worker-metrics" if config.metrics_address is not None else None
        self.supervisor = Supervisor(config.workers, self._worker_config,
                                     self._executor_lost, metrics_dir=metrics_dir,
                                     id_prefix=f"executor-{self.generation}-")
        self.ports: dict[str, int] = {}

    def _ensure_admin(self, config: ServerConfig) -> None:
        self.auth.index_user_names()
        password = config.admin_password
        if password is None:
            password = DEFAULT_ADMIN_PASSWORD
            _log.warning("the administrator %r has the documented default password (sim "
                         "only); set --admin-password / CONFIDE_ADMIN_PASSWORD",
                         config.admin_user)
        try:
            self.auth.ensure_admin(config.admin_user, password)
        except ValueError as e:
            raise ConfigError(str(e)) from e

    def _join(self, config: ServerConfig, deadline_s: float = 60.0) -> RootSecret:
        """Enrol with the key service of another node: prove this node's evidence,
        receive its identity (a certificate naming its roles) and the platform secret.

        Raises:
            ConfigError: refused, or no listed key service answered in ``deadline_s``.
        """
        assert config.key_service_address is not None  # _check_roles
        roles = tuple(sorted(self.roles))
        try:
            address, creds = enrol_through_any(
                key_service_addresses(config.key_service_address), deadline_s=deadline_s,
                node_id=self.node_id, attester=self.node.attester, ca_pem=None,
                clock=lambda: dt.datetime.now(dt.UTC), services=roles)
        except EnrolmentRefused as e:
            raise ConfigError(f"cannot join the platform: {e}") from e
        if creds.root_secret is None:  # every role of a serve node receives it
            raise ConfigError(f"cannot join the platform: {address} granted no platform secret")
        _log.info("joined the platform through %s as %s (%s)", address, self.node_id,
                  ",".join(roles))
        self.identity = PemPair(creds.key_pem, creds.cert_pem)
        return creds.root_secret

    def _join_as_key_replica(self, config: ServerConfig) -> RootSecret:
        """A further key service: it joins through a listed one and keeps the platform
        secret sealed to its own data dir, so it can serve enrolments alone later.

        With a sealed copy it tries each listed key service once and starts from the
        copy if none answers; the copy must equal what a key service grants (else this
        data dir belongs to another platform).

        Raises:
            ConfigError: refused, no key service answered and no sealed copy, or the
                sealed copy is another platform's.
        """
        data = config.data_dir
        sealed = open_root_secret(data, create=False) if _has_root_secret(data) else None
        try:
            granted = self._join(config, deadline_s=60.0 if sealed is None else 0.0)
        except ConfigError as e:
            if sealed is None or not isinstance(e.__cause__, KeyServicesUnreachable):
                raise
            _log.warning("%s; serving the keys role with the platform secret sealed in %s",
                         e, data)
            self._unchecked_by_peers = True
            return sealed
        if sealed is None:
            seal_root_secret(data, granted)
            _log.info("sealed the platform secret to %s (a further key service)", data)
        elif sealed != granted:
            raise ConfigError(f"the platform secret sealed in {data} is not the one the key "
                              "service granted: this data dir belongs to another platform")
        return granted

    def _authorize_roles(self, verdict: object, services: Sequence[str]) -> None:
        """The key service grants a role only to a node whose verified measurement
        its enclave_info table lists (``RoleMeasurements``)."""
        unknown = sorted(set(services) - set(NODE_ROLES))
        if unknown:
            raise KeysError("unknown-role", f"no such role {', '.join(unknown)}")
        measurements = getattr(verdict, "measurements", None) or {}
        self.role_measurements.check(services, measurements)

    def _not_revoked(self, node_id: str) -> None:
        revoked = self.revocations.covering(node_id)
        if revoked is not None:
            raise KeysError("node-revoked", f"node {node_id} is revoked ({revoked.node_id}: "
                            f"{revoked.reason or 'no reason given'})")

    def _audit_refusal(self, what: str) -> Callable[[str, str, str], None]:
        """An audit entry per refused node: ``node:<id>``, what was refused and why.

        The same refusal of the same node is recorded once per ``_AUDIT_REPEAT_S``:
        a refused node that keeps calling cannot flood the audit log."""
        seen: dict[tuple[str, str], float] = {}
        lock = threading.Lock()

        def record(node_id: str, peer: str, message: str) -> None:
            now = time.monotonic()
            with lock:
                last = seen.get((node_id, message))
                if last is not None and now - last < _AUDIT_REPEAT_S:
                    return
                if len(seen) >= _AUDIT_REPEAT_KEYS:
                    seen.clear()
                seen[(node_id, message)] = now
            self.audit.append(user=f"node:{node_id}", message=f"{what} refused: {message}",
                              result=False, ip=peer_ip(peer))
        return record

    def _executor_lost(self, executor_id: str, reason: str) -> None:
        self.scheduler.executor_lost(executor_id, reason)

    def _node_certificate(self, node_id: str, services: list[str]) -> PemPair:
        key = ec.generate_private_key(ec.SECP256R1())
        der = self.ca.issue_node_certificate(key.public_key(), node_id=node_id,
                                             services=services, now=dt.datetime.now(dt.UTC),
                                             lifetime=dt.timedelta(days=7))
        cert = x509.load_der_x509_certificate(der)
        return PemPair(key_pem(key), cert.public_bytes(serialization.Encoding.PEM))

    @property
    def api_cert(self) -> PemPair:
        """The current attested API certificate and its key (PEM, in memory only)."""
        return self._api_creds.pair

    def _worker_config(self, executor_id: str) -> WorkerConfig:
        """Non-secret bootstrap data: the worker enrols to get its keys (no secret here)."""
        host = _dial_host(self.config.internal_host)
        # Workers enrol through this node's own key service first when it has one.
        listed = [self.config.key_service_address] if self.config.key_service_address else []
        local = [_address(host, self.ports["keys"])] if "keys" in self.roles else []
        key_service = ",".join(local + listed)
        return WorkerConfig(
            scheduler=_address(host, self.ports["scheduler"]),
            key_service=key_service, executor_id=executor_id,
            ca_pem=self.ca.certificate_pem(),
            sim_state_dir=str(self.node.attester_dir),
            server_name=service_dns_name("scheduler"), slots=self.config.worker_slots,
            python_prestart=self.config.worker_python_prestart,
            log_level=self.config.worker_log_level, log_format=self.config.log_format,
            blob_store_port=self.blobs.port if self.blobs is not None else None,
            fusion_dir=str(self.fusion_dir),
            file_roots=tuple(str(Path(r).resolve()) for r in self.config.file_roots),
            extra_loopback_ports=tuple(self.config.file_agent_loopback_ports),
            limits=self.config.limits)

    def _agree(self, config: ServerConfig, clock: Callable[[], float]) -> SchedulerAgreement:
        """A scheduler node on a shared database: its clock and executor timeout
        agree with the database and the other nodes, or it does not start."""
        try:
            agreement = SchedulerAgreement(
                self.db, generation=self.generation, executor_timeout_s=config.executor_timeout_s,
                max_skew_s=config.limits.max_clock_skew_s,
                horizon_s=max(10.0, 5 * config.health_check_s), clock=clock)
            agreement.check_start()
        except ValueError as e:
            raise ConfigError(str(e)) from e
        except AgreementError as e:
            raise ConfigError(f"cannot start the scheduler: {e}") from e
        except StorageError as e:
            raise ConfigError(f"cannot check the scheduler's clock and executor timeout "
                              f"against the database: {e}") from e
        return agreement

    def _bind(self, server: grpc.aio.Server, port: int, creds: grpc.ServerCredentials,
              host: str) -> int:
        bound = server.add_secure_port(f"{host}:{port}", creds)
        if bound == 0:
            raise ConfigError(f"cannot listen on {host}:{port}")
        return int(bound)

    def start(self) -> None:
        cfg, limits = self.config, self.config.limits
        self._rpc = rpc = RpcLoop()
        metrics = cfg.metrics_address is not None
        served: dict[str, tuple[grpc.aio.Server, tuple[str, ...]]] = {}
        # With PostgreSQL an inline handler's round trips park it on the loop
        # (api._serving, confide._suspend): blocking there would stall every RPC.
        inline_db: Inline = "suspended" if self.db.postgres else "loop"
        if "authentication" in self.roles:
            auth_server = build_server(rpc, max_message_bytes=limits.max_message_bytes,
                                       metrics=metrics, gate=self._gate)
            served["authentication"] = (auth_server, add_authentication_servicers(
                self.auth, auth_server, internal=False))
            self.ports["authentication"] = self._bind(auth_server, cfg.authentication_port,
                                                      self._api_creds.credentials(), cfg.host)
        if "frontend" in self.roles:
            front = build_server(rpc, max_message_bytes=limits.max_message_bytes,
                                 inline=inline_db, metrics=metrics, gate=self._gate)
            if self.blobs is not None:
                self.blobs.start()
                self.ports["blobs"] = self.blobs.port
            served["frontend"] = (front, add_frontend_servicers(
                self.frontend, self.management, self.scheduler, self.audit, self.blobs, front,
                audit_signer=lambda: self._attested))
            self.ports["frontend"] = self._bind(front, cfg.frontend_port,
                                                self._api_creds.credentials(), cfg.host)
        if "scheduler" in self.roles:
            self._sched_creds = _RotatingCredentials(
                self.identity or self._node_certificate(self.node_id, ["scheduler"]),
                client_ca=self.ca.certificate_pem())
            sched_creds = self._sched_creds.credentials()
            sched = build_server(rpc, max_message_bytes=limits.max_message_bytes * 4,
                                 inline=inline_db, metrics=metrics,
                                 options=keepalive_server_options())
            served["scheduler"] = (sched, add_scheduler_servicer(
                self.scheduler, limits, sched, revoked=self.revocations,
                audit=self._audit_refusal("internal call")))
            self.ports["scheduler"] = self._bind(sched, cfg.scheduler_port, sched_creds,
                                                 cfg.internal_host)
        if "keys" in self.roles:
            # The key service: server-authenticated TLS with the attested certificate
            # (enrolling nodes have no client certificate yet), on its own port so the
            # scheduler port can keep refusing every handshake without one.
            keys = build_server(rpc, max_message_bytes=limits.max_message_bytes,
                                max_workers=16, metrics=metrics)
            served["keys"] = (keys, add_key_servicer(
                self.keys, keys, clock=lambda: dt.datetime.now(dt.UTC),
                audit=self._audit_refusal("enrolment")))
            self.ports["keys"] = self._bind(keys, cfg.key_service_port,
                                            self._api_creds.credentials(), cfg.internal_host)
            if cfg.attestation_service_port is not None:
                self._serve_reports(cfg.attestation_service_port)
        self.monitor = HealthMonitor(
            rpc, self.db, self.scheduler, certificate=lambda: self._attested.certificate_der,
            max_evidence_age=2 * dt.timedelta(seconds=cfg.attestation_validity_s),
            interval=cfg.health_check_s, clock=lambda: dt.datetime.now(dt.UTC),
            agreement=self.agreement.check if self.agreement is not None else None,
            exports_executors="scheduler" in self.roles)
        for role, (server, services) in served.items():
            self.monitor.watch(ServerHealth(server, services), rule_for(role, self.roles))
        self.monitor.start()  # NOT_SERVING until the first round of checks passes
        for server, _services in served.values():
            rpc.run(server.start())
            self._servers.append(server)
        if metrics:
            self._start_metrics()
        if self.roles & {"authentication", "frontend", "keys"}:
            self.node.write_client_files(self.api_cert.cert_pem)
        threading.Thread(target=self._renew_loop, name="attest-renew", daemon=True).start()
        threading.Thread(target=self._keys_loop, name="keyring", daemon=True).start()
        if "scheduler" in self.roles:
            threading.Thread(target=self._reap_loop, name="reaper", daemon=True).start()
            if cfg.workers > 0:
                self.supervisor.start()
        internal = ("scheduler", "keys", "attestation")
        _log.info("confide is serving %s: %s", ",".join(sorted(self.roles)), ", ".join(
            f"{role} {cfg.internal_host if role in internal else cfg.host}:{port}"
            for role, port in self.ports.items()))

    def _serve_reports(self, port: int) -> None:
        """The keys node's attestation report service, for the other nodes'
        certificates (``--attestation-service``): one AS root for the deployment."""
        cfg, authority = self.config, self.node.authority
        if authority is None:
            raise ConfigError("--attestation-service-port: this node's own reports come from "
                              "--attestation-service; serve them from that node")
        try:
            server = make_report_server(
                self.node.report_service(), cfg.internal_host, port,
                tls_context=server_tls_context(authority), limits=cfg.limits)
        except OSError as e:
            raise ConfigError(f"cannot serve the attestation report service on "
                              f"{cfg.internal_host}:{port}: {e}") from e
        self._report_server = server
        self.ports["attestation"] = int(server.server_address[1])
        threading.Thread(target=server.serve_forever, name="report-service",
                         daemon=True).start()

    def _start_metrics(self) -> None:
        address = self.config.metrics_address
        if address is None:
            return
        if self.supervisor.metrics_dir is not None:
            prepare_worker_metrics_dir(self.supervisor.metrics_dir)
            self._worker_metrics = WorkerMetrics(self.supervisor.metrics_dir)
            REGISTRY.register(self._worker_metrics)
        try:
            self.metrics = MetricsEndpoint.start(address, REGISTRY)
        except OSError as e:
            raise ConfigError(f"cannot serve metrics on {address}: {e}") from e
        self.ports["metrics"] = self.metrics.port
        _log.info("metrics on %s", self.metrics.url)

    def renew_certificate(self) -> None:
        """Re-attest: new key, quote and report; new handshakes get the new certificate."""
        attested = self.node.issue_certificate(self.config.server_names)
        self._attested = attested
        self._api_creds.rotate(_pem_pair(attested))
        self.node.write_api_certificate(attested.certificate_pem())
        _log.info("re-attested: new API certificate issued")

    def renew_scheduler_certificate(self) -> None:
        """A new platform-CA certificate for the scheduler's mutual-TLS endpoint."""
        if self._sched_creds is not None:
            self._sched_creds.rotate(self._node_certificate(self.node_id, ["scheduler"]))
            _log.info("renewed the scheduler's node certificate")

    def _scheduler_renewal_due(self, now: dt.datetime) -> bool:
        if self._sched_creds is None:
            return False
        cert = x509.load_pem_x509_certificate(self._sched_creds.pair.cert_pem)
        lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
        return now >= cert.not_valid_after_utc - lifetime / 2

    def _renew_loop(self) -> None:
        validity = dt.timedelta(seconds=self.config.attestation_validity_s)
        while not self._stopping.wait(self.config.renewal_check_s):
            try:
                now = dt.datetime.now(dt.UTC)
                if renewal_due(self._attested.certificate_der, now,
                               attestation_validity=validity):
                    self.renew_certificate()
                if self._scheduler_renewal_due(now):
                    self.renew_scheduler_certificate()
            except Exception:  # noqa: BLE001 - keep renewing; the next round retries
                _log.exception("re-attestation failed")

    def _keys_loop(self) -> None:
        """Pick up rotations made elsewhere; rotate what ``[keys] rotate_after`` says is due."""
        while not self._stopping.wait(self.config.key_check_s):
            try:
                self.key_rotation.check(self._rotate_after_s)
            except Exception:  # noqa: BLE001 - keep the current keys; the next round retries
                _log.exception("keyring check failed")

    def _reap_loop(self) -> None:
        while not self._stopping.wait(1.0):
            try:
                self.scheduler.reap()
            except Exception:  # noqa: BLE001 - keep the reaper alive; the next round retries
                _log.exception("reaper round failed")

    def request_stop(self) -> None:
        """Ask :meth:`wait` to return (safe in a signal handler: no lock is taken).

        The first request starts the shutdown; a later one, during the drain of
        :meth:`stop`, ends its grace period at once.
        """
        self._stop_requests += 1

    def wait(self) -> None:
        """Until :meth:`request_stop` (or :meth:`stop`)."""
        while self._stop_requests == 0 and not self._stopping.is_set():
            time.sleep(_DRAIN_POLL_S)

    def stop(self, grace_s: float = 0.0) -> None:
        """Drain, then stop everything (docs/operations.md, "Stopping and restarting").

        Readiness goes NOT_SERVING first; the client APIs then refuse new RPCs
        (UNAVAILABLE, :data:`SHUTTING_DOWN`) and the scheduler leases no more
        tasks (staged ones stay queued for the next start). Running tasks get
        up to ``grace_s`` to finish and report; those still running then fail
        with :func:`shutdown_reason`. Then the workers are stopped and reaped,
        and the servers close.
        """
        if self._stopped:
            return
        self._stopped = True
        if self.monitor is not None:  # readiness goes first: NOT_SERVING everywhere
            self.monitor.shutdown()
        if self.agreement is not None:  # a node started next may use another timeout
            self.agreement.leave()
        self._gate.close(SHUTTING_DOWN)
        self.scheduler.drain()
        self.supervisor.drain()
        self._drain(grace_s)
        self._stopping.set()
        self.supervisor.stop()
        if self.blobs is not None:
            self.blobs.stop()
        if self._report_server is not None:
            self._report_server.shutdown()
            self._report_server.server_close()
        if self._rpc is not None:
            for server in self._servers:
                self._rpc.run(server.stop(grace=1.0))
            self._rpc.close()
        if self.metrics is not None:
            self.metrics.stop()
        if self._worker_metrics is not None:
            REGISTRY.unregister(self._worker_metrics)
        self.db.close()
        _log.info("confide stopped")

    def _drain(self, grace_s: float) -> None:
        """Wait for the running tasks (up to ``grace_s``), then fail the rest."""
        deadline = time.monotonic() + grace_s
        requests = self._stop_requests  # one more cuts the wait short
        try:
            running = self.scheduler.running()
            if running:
                _log.warning("shutting down: waiting up to %g s for %d running task(s); "
                             "queued tasks stay queued (another SIGTERM ends the wait)",
                             grace_s, running)
            else:
                _log.info("shutting down: no task is running")
            while running and time.monotonic() < deadline and self._stop_requests == requests:
                time.sleep(min(_DRAIN_POLL_S, max(0.0, deadline - time.monotonic())))
                running = self.scheduler.running()
            if running:
                reason = shutdown_reason(grace_s, cut_short=self._stop_requests != requests)
                failed = self.scheduler.fail_running(reason)
                _log.warning("shutting down: %d task(s) failed: %s", len(failed), reason)
        except Exception:  # noqa: BLE001 - the database is gone: stop anyway (the reaper
            # of the next start fails what is left once its lease is stale)
            _log.exception("shutting down: the running tasks could not be drained")
