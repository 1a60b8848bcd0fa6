"""Configuration of a confide server (all-in-one or one node of a distributed deployment)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import Limits

__all__ = ["ALL_ROLES", "DEFAULT_ADMIN_PASSWORD", "ServerConfig"]

#: The roles ``confide serve --services`` can start (docs/operations.md,
#: "Distributed shape"). ``frontend`` includes the management API and the blob
#: store; ``scheduler`` includes the reaper and any local workers; ``keys`` is
#: the key service (node enrolment) and holds the platform root secret.
ALL_ROLES = ("authentication", "frontend", "scheduler", "keys")

#: What Teaclave's examples log in with. Accepted only with the sim TEE.
DEFAULT_ADMIN_PASSWORD = "teaclave"  # noqa: S105 - documented development default


@dataclass
class ServerConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    # The roles this process serves (ALL_ROLES: the all-in-one server).
    services: tuple[str, ...] = ALL_ROLES
    # Where the internal endpoints (scheduler, key service) listen; other hosts'
    # workers and nodes dial it (docs/operations.md, "Distributed shape").
    internal_host: str = "127.0.0.1"
    # HOST:PORT of a key service on another node. A node that does not serve
    # ``keys`` enrols there with its attested evidence to receive its identity
    # (a certificate naming its roles) and the platform secret.
    key_service_address: str | None = None
    # The sim attester's state (stands in for the hardware vendor's PKI: every
    # node of a sim deployment holds a copy of the same one). Default: <data>/sim-attester.
    sim_attester_dir: Path | None = None
    authentication_port: int = 7776
    frontend_port: int = 7777
    scheduler_port: int = 17780
    key_service_port: int = 17781  # enrolment of worker nodes (loopback)
    # Where a keys node serves its attestation report service (internal host), so
    # other nodes' API certificates carry its reports. None: not served.
    attestation_service_port: int | None = None
    # HOST:PORT of that service, and its AS root (PEM file): this node's certificates
    # are then endorsed there, so clients attest every node with one set of trust files.
    attestation_service_address: str | None = None
    attestation_service_ca: Path | None = None
    blob_port: int | None = 7778  # None: no blob store
    workers: int = 2
    worker_slots: int = 4  # tasks each worker runs concurrently
    # Python sandboxes each worker keeps started ahead of its tasks (hardened, numpy
    # imported; each still runs one task). None: one per slot. At most
    # limits.python_max_prestarted; 0: a cold sandbox per task.
    worker_python_prestart: int | None = None
    worker_log_level: str = "INFO"
    database_url: str | None = None  # default: SQLite in data_dir
    tee: str = "sim"
    admin_user: str = "admin"
    admin_password: str | None = None  # None = DEFAULT_ADMIN_PASSWORD (sim only)
    token_lifetime_s: int = 24 * 3600
    executor_timeout_s: float = 30.0
    sqlite_synchronous: str = "NORMAL"
    attestation_validity_s: float = 3600.0  # re-attest the API certificate this often (Teaclave)
    renewal_check_s: float = 30.0  # how often renewal is checked
    # File agent of the workers (docs/file-agent.md). Off by default: loopback is
    # reachable on the blob store's port only, and file:// not at all.
    file_agent_loopback_ports: tuple[int, ...] = ()  # extra loopback ports inputs may use
    file_roots: tuple[str, ...] = ()  # absolute directories file:// URLs may point into
    # DNS names clients reach the APIs by: the API certificate carries them (SAN),
    # so the TLS server name a client sends matches (docs/operations.md, "Logs").
    server_names: tuple[str, ...] = ("localhost",)
    metrics_address: str | None = None  # HOST:PORT of the Prometheus endpoint; None: off
    log_format: str = "human"  # the workers' log lines: human or json
    health_check_s: float = 2.0  # how often readiness is checked
    shutdown_grace_s: float = 30.0  # SIGTERM: running tasks may finish this long
    # Key rotation ([keys], docs/operations.md): rotate a key once the active one is
    # this old ("90d"; "off": only on command); reload the keyring this often.
    key_rotate_after: str = "off"
    key_check_s: float = 10.0
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        # Workers run with another working directory: every path they are
        # given must be absolute (a relative --data-dir once broke them).
        self.data_dir = Path(self.data_dir).resolve()
        if self.sim_attester_dir is not None:
            self.sim_attester_dir = Path(self.sim_attester_dir).resolve()

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'confide.db'}"
