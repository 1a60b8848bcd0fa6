"""The background health check (server/_monitor.py) with fake database, scheduler and clock.

Threats: a database that hangs (a PostgreSQL host gone silent) keeps every server
SERVING because the check never returns; a stop that leaves statuses SERVING while
the ports close.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from confide.api import RpcLoop, ServerHealth, build_server
from confide.node._monitor import HealthMonitor
from confide.node._readiness import RULES
from confide.telemetry._metrics import REGISTRY

NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)


def _certificate(issued: dt.datetime) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
    return (x509.CertificateBuilder().issuer_name(name).subject_name(name).serial_number(1)
            .public_key(key.public_key()).not_valid_before(issued)
            .not_valid_after(issued + dt.timedelta(days=90)).sign(key, hashes.SHA256())
            .public_bytes(serialization.Encoding.DER))


class _Txn:
    def count_by(self, table: str, column: str) -> dict[Any, int]:
        return {10: 2} if table == "tasks" else {"": 5, "executor-1": 1}


class _Db:
    def __init__(self) -> None:
        self.hang = threading.Event()
        self.release = threading.Event()
        self.broken = False

    @contextmanager
    def read(self) -> Iterator[_Txn]:
        if self.broken:
            raise OSError("connection refused")
        if self.hang.is_set():
            self.release.wait(30)
        yield _Txn()


class _Scheduler:
    live = 1

    def live_executors(self) -> int:
        return self.live


@pytest.fixture
def rpc() -> Iterator[RpcLoop]:
    loop = RpcLoop()
    yield loop
    loop.close()


def _monitor(rpc: RpcLoop, db: _Db, scheduler: _Scheduler, issued: dt.datetime = NOW,
             timeout: float = 0.5, exports_executors: bool = True
             ) -> tuple[HealthMonitor, ServerHealth]:
    server = build_server(rpc, max_message_bytes=1024)
    health = ServerHealth(server, ["teaclave_frontend_service_proto.TeaclaveFrontend"])
    der = _certificate(issued)
    monitor = HealthMonitor(rpc, db, scheduler,  # type: ignore[arg-type]
                            certificate=lambda: der, max_evidence_age=dt.timedelta(hours=2),
                            interval=60, clock=lambda: NOW + dt.timedelta(minutes=1),
                            check_timeout=timeout, exports_executors=exports_executors)
    monitor.watch(health, RULES["frontend"])
    return monitor, health


def test_all_checks_pass_and_the_gauges_follow(rpc: RpcLoop) -> None:
    monitor, health = _monitor(rpc, _Db(), _Scheduler())
    monitor.start()
    try:
        assert health.statuses == {"": True,
                                   "teaclave_frontend_service_proto.TeaclaveFrontend": True}
        assert REGISTRY.get_sample_value("confide_tasks", {"state": "finished"}) == 2
        assert REGISTRY.get_sample_value("confide_scheduler_queue_depth") == 5
        assert REGISTRY.get_sample_value("confide_attestation_evidence_age_seconds") == 60
    finally:
        monitor.shutdown()


def test_only_a_scheduler_node_exports_its_executor_count(rpc: RpcLoop) -> None:
    """Executors pull from scheduler nodes; on any other node the count is 0 for good,
    and the ConfideNoWorkers alert (confide_scheduler_executors == 0) would page."""
    scheduler = _Scheduler()
    scheduler.live = 3
    monitor, _health = _monitor(rpc, _Db(), scheduler)
    monitor.check_once()
    assert REGISTRY.get_sample_value("confide_scheduler_executors") == 3
    scheduler.live = 0
    frontend_only, _health = _monitor(rpc, _Db(), scheduler, exports_executors=False)
    frontend_only.check_once()
    assert REGISTRY.get_sample_value("confide_scheduler_executors") == 3  # untouched
    monitor.shutdown()
    frontend_only.shutdown()


def test_a_hanging_database_fails_the_check_within_its_timeout(rpc: RpcLoop) -> None:
    db = _Db()
    monitor, health = _monitor(rpc, db, _Scheduler())
    monitor.start()
    try:
        db.hang.set()
        started = time.monotonic()
        checks = monitor.check_once()
        assert time.monotonic() - started < 5
        assert checks.database is False
        assert health.statuses[""] is False
        # Still hung: the next round does not pile another query on it.
        assert monitor.check_once().database is False
        db.hang.clear()
        db.release.set()
        deadline = time.monotonic() + 5
        while not monitor.check_once().database:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert health.statuses[""] is True
    finally:
        db.release.set()
        monitor.shutdown()


def test_database_errors_and_missing_workers_and_stale_evidence(rpc: RpcLoop) -> None:
    db, scheduler = _Db(), _Scheduler()
    db.broken = True
    scheduler.live = 0
    monitor, _health = _monitor(rpc, db, scheduler, issued=NOW - dt.timedelta(hours=3))
    monitor.start()
    try:
        checks = monitor.check_once()
        assert (checks.database, checks.attestation, checks.workers) == (False, False, False)
        assert REGISTRY.get_sample_value("confide_health_check_ok", {"check": "database"}) == 0
    finally:
        monitor.shutdown()


def test_shutdown_turns_every_status_not_serving(rpc: RpcLoop) -> None:
    from grpc_health.v1 import health_pb2

    monitor, health = _monitor(rpc, _Db(), _Scheduler())
    monitor.start()
    monitor.shutdown()
    servicer = health._servicer
    assert set(servicer._server_status.values()) == {health_pb2.HealthCheckResponse.NOT_SERVING}
