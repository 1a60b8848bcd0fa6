"""The platform's keys as a node or an operator command opens them: the
database, sealed by the live keyring, with the rotation and the audit log wired.

``confide serve`` and the operator commands (``confide keys``, ``confide audit
verify``) open the same way, so a rotation made by either is the same ring.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ..crypto.records import RecordSealer
from ..keys import KeyRing, LiveKeys, RootSecret
from ..services.audit import AuditLog
from ..services.keys import KeyRotation
from ..storage import Database

__all__ = ["PlatformKeys", "open_platform_keys"]


@dataclass
class PlatformKeys:
    db: Database
    live: LiveKeys
    rotation: KeyRotation
    audit: AuditLog

    def close(self) -> None:
        self.db.close()


def open_platform_keys(secret: RootSecret, db_url: str, *, synchronous: str = "NORMAL",
                       clock: Callable[[], float] = time.time) -> PlatformKeys:
    """Open ``db_url`` with the stored keyring (recording its start on first use).

    Raises:
        KeysError: the stored keyring does not open (``keyring-invalid``).
        confide.storage.StorageError: the database cannot be opened or migrated.
    """
    live = LiveKeys(KeyRing(secret))
    db = Database(db_url, RecordSealer(live.view("record")), synchronous=synchronous)
    try:
        rotation = KeyRotation(db, secret, live, clock=clock)
        rotation.start()
        audit = AuditLog(db, live.view("audit"), clock=clock)
    except BaseException:
        db.close()
        raise
    rotation.audit = audit
    return PlatformKeys(db, live, rotation, audit)

