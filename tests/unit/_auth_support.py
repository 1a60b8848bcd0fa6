"""An AuthenticationService on a real (SQLite or PostgreSQL) database, with a
hand-driven clock and an argon2 hasher that counts its verifications."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher

from confide.config import Limits
from confide.crypto.records import RecordSealer
from confide.services._identity import Principal, Role, RoleKind
from confide.services.audit import AuditEntry, AuditLog
from confide.services.authentication import (
    AuthenticationService,
    LoginThrottle,
    SharedFailures,
    TokenSigner,
)
from confide.storage import Database

ADMIN = Principal("admin", Role(RoleKind.PLATFORM_ADMIN))
IP_A = bytes(12) + bytes([10, 0, 0, 1])  # ::10.0.0.1, the audit log's IPv4 form
IP_B = bytes(12) + bytes([10, 0, 0, 2])


class Clock:
    """Seconds, moved only by the test."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CountingHasher(PasswordHasher):
    """A cheap argon2id hasher that counts ``verify`` calls (and the hashes they
    were given), and can hold them at a gate."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verified: list[str] = []
        self.gate: threading.Event | None = None
        self.inside = threading.Semaphore(0)
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        with self._lock:
            self.verified.append(str(hash))
        if self.gate is not None:
            self.inside.release()
            self.gate.wait(10)
        return bool(super().verify(hash, password))


@dataclass
class Auth:
    service: AuthenticationService
    audit: AuditLog
    db: Database
    clock: Clock
    hasher: CountingHasher
    limits: Limits
    register: Callable[..., None] = field(init=False)

    def __post_init__(self) -> None:
        def register(user_id: str, password: str = "pw", role: str = "PlatformAdmin",
                     attribute: str = "", caller: Principal = ADMIN) -> None:
            self.service.register(caller, user_id, password, role, attribute)
        self.register = register

    def entries(self, needle: str = "user_login") -> list[AuditEntry]:
        """Login audit entries whose message contains ``needle``, oldest first."""
        found = self.audit.query("message:user_login", 100_000)
        return list(reversed([e for e in found if needle in e.message]))


def make_auth(url: str, *, limits: Limits | None = None, clock: Clock | None = None,
              shared_key: bytes | None = None, **kw: Any) -> Auth:
    """``shared_key``: count failures in the database (as every server does),
    with row ids keyed by it; else in this process only."""
    limits = limits or Limits()
    db = Database(url, RecordSealer(b"s" * 32))
    clock = clock or Clock()
    hasher = CountingHasher()
    audit = AuditLog(db, b"a" * 32, clock=clock)
    shared = None if shared_key is None else SharedFailures(db, shared_key, limits, clock)
    service = AuthenticationService(
        db, TokenSigner(b"t" * 64, 3600), clock=clock, limits=limits, audit=audit,
        hasher=hasher, throttle=LoginThrottle(limits, clock, shared=shared), **kw)
    service.index_user_names()
    service.ensure_admin("admin", "teaclave")
    return Auth(service, audit, db, clock, hasher, limits)
