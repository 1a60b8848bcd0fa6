"""``confide worker``: execution workers on a host of their own.

The host runs no control-plane role: it is given the scheduler's and the key
service's addresses, and each worker process it supervises enrols over the
network with its attested (sim) evidence (``confide.execution._enrol``): it
attests the key service first, proves its own evidence, and receives a
certificate naming the ``execution`` role and the platform secret. Only then
does it open its mutual-TLS channel to the scheduler, which checks that role
against the inbound policy on every call.

A worker that dies is replaced; its task is ended by the scheduler's reaper
when its executor stops heart-beating (there is no in-process scheduler to
tell).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Limits
from ..execution._worker import WorkerConfig
from ..keys import service_dns_name
from ..rpc import address_list, failover_target
from ._supervisor import Supervisor

__all__ = ["WorkerHost", "WorkerHostConfig", "WorkerHostError"]

_log = logging.getLogger("confide.worker.host")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_MAX_WORKERS = 256


class WorkerHostError(Exception):
    """The worker host cannot start with this configuration."""


def _check_addresses(flag: str, text: str) -> tuple[str, ...]:
    try:
        return address_list(text)
    except ValueError as e:
        raise WorkerHostError(f"{flag} must be {e}") from None


@dataclass(frozen=True)
class WorkerHostConfig:
    scheduler: str  # HOST:PORT of the scheduler's worker endpoint
    key_service: str  # HOST:PORT of the key service (enrolment)
    sim_attester_dir: Path  # a copy of the platform's sim attester state (sim PKI)
    name: str  # this host's name: executor ids are <name>/executor-<uuid>
    workers: int = 2
    slots: int = 4
    python_prestart: int | None = None
    log_level: str = "INFO"
    log_format: str = "human"
    limits: Limits = field(default_factory=Limits)


class WorkerHost:
    """Supervises ``workers`` worker processes that enrol with a remote key service."""

    def __init__(self, config: WorkerHostConfig) -> None:
        try:
            failover_target(_check_addresses("--scheduler", config.scheduler))
        except ValueError as e:
            raise WorkerHostError(f"--scheduler: {e}") from None
        _check_addresses("--keys", config.key_service)
        if not _NAME.fullmatch(config.name):
            raise WorkerHostError(f"--name must be 1-63 letters, digits, '.', '_' or '-', "
                                  f"not {config.name!r}")
        if not 1 <= config.workers <= _MAX_WORKERS:
            raise WorkerHostError(f"--workers must be 1..{_MAX_WORKERS}: {config.workers}")
        if not 1 <= config.slots <= 64:
            raise WorkerHostError(f"--slots must be 1..64: {config.slots}")
        if not (config.sim_attester_dir / "sim-pki.json").exists():
            raise WorkerHostError(
                f"no sim attester state in {config.sim_attester_dir}: copy the platform's "
                "<data>/sim-attester here (sim only; it stands in for the vendor's PKI)")
        self.config = config
        self._stopping = threading.Event()
        self.supervisor = Supervisor(config.workers, self._worker_config, self._lost,
                                     id_prefix=f"{config.name}/executor-")

    def _worker_config(self, executor_id: str) -> WorkerConfig:
        cfg = self.config
        return WorkerConfig(
            scheduler=cfg.scheduler, key_service=cfg.key_service, executor_id=executor_id,
            ca_pem=None, sim_state_dir=str(cfg.sim_attester_dir.resolve()),
            server_name=service_dns_name("scheduler"), slots=cfg.slots,
            python_prestart=cfg.python_prestart, log_level=cfg.log_level,
            log_format=cfg.log_format, limits=cfg.limits)

    def _lost(self, executor_id: str, reason: str) -> None:
        _log.error("%s lost (%s); the scheduler ends its task when its lease lapses",
                   executor_id, reason)

    def start(self) -> None:
        self.supervisor.start()
        _log.info("worker host %s: %d workers pulling from %s (key service %s)",
                  self.config.name, self.config.workers, self.config.scheduler,
                  self.config.key_service)

    def wait(self) -> None:
        self._stopping.wait()

    def stop(self) -> None:
        self._stopping.set()
        self.supervisor.stop()
