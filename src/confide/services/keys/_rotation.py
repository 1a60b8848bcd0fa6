"""Key rotation: the keyring kept in the database, rotated and re-sealed online.

The sealed ring (``confide.keys.KeyRing``) is the ``meta`` row ``keyring``: one
place every node sharing the database reads, included in every database backup
(the SQLite snapshot of ``confide backup``, or ``pg_dump``). Writers change it
by compare-and-swap, so two nodes rotating at once both succeed, one after the
other, and neither loses the other's key.

A rotation takes effect without downtime: the process that rotates uses the
new key at once; any other process (the running server, when ``confide keys
rotate`` ran beside it, or another node) picks the ring up on its next check
(``[keys] check_interval_s``) or as soon as it meets data under a key it does
not know. Older keys stay in the ring, so what they protect stays readable.
Every rotation and reseal is an audit entry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from ..._units import parse_duration
from ...keys import KEY_KINDS, KeyRing, KeysError, KeyVersion, LiveKeys, RootSecret
from ...storage import Database

__all__ = ["RING_META_KEY", "KeyRotation", "ResealReport", "parse_duration"]

_log = logging.getLogger("confide.keys")

RING_META_KEY = "keyring"
_OPERATOR_IP = bytes(16)
_SWAP_ATTEMPTS = 8


class _Audit(Protocol):
    """What the rotation needs of ``confide.services.audit.AuditLog``."""

    def append(self, *, user: str, message: str, result: bool, ip: bytes) -> None: ...


@dataclass(frozen=True)
class ResealReport:
    kid: str  # the key every row is under now
    resealed: int
    tables: dict[str, int]


class KeyRotation:
    """The ring of one database: loading, watching, rotating, re-sealing.

    ``live`` is the process's running view: every consumer's key comes from it.
    """

    def __init__(self, db: Database, root: RootSecret, live: LiveKeys, *,
                 clock: Callable[[], float]) -> None:
        self._db = db
        self._root = root
        self.live = live
        self._clock = clock
        self.audit: _Audit | None = None
        live.set_loader(self.load)

    def load(self) -> KeyRing:
        """The stored ring (version 1 of each kind only, when none is stored yet).

        Raises:
            KeysError: ``keyring-invalid``.
        """
        blob = self._db.read_meta(RING_META_KEY)
        return KeyRing(self._root) if blob is None else KeyRing.open(blob, self._root)

    def _swap(self, change: Callable[[KeyRing], KeyRing]) -> KeyRing:
        for _ in range(_SWAP_ATTEMPTS):
            blob = self._db.read_meta(RING_META_KEY)
            ring = KeyRing(self._root) if blob is None else KeyRing.open(blob, self._root)
            new = change(ring)
            if new is ring:
                self.live.install(ring)
                return ring
            if self._db.swap_meta(RING_META_KEY, blob, new.seal()):
                self.live.install(new)
                return new
        raise KeysError("keyring-busy", "the keyring kept changing under us; try again")

    def start(self) -> KeyRing:
        """Load the ring into ``live``, recording its start time on first use."""
        now = int(self._clock())
        return self._swap(lambda ring: ring if ring.since is not None else ring.started(now))

    def refresh(self) -> bool:
        """Reload the stored ring; ``True`` when it changed (another process rotated)."""
        before = {kind: self.live.ring.active(kind).kid for kind in KEY_KINDS}
        changed = self.live.reload()
        if changed:
            after = {kind: self.live.ring.active(kind).kid for kind in KEY_KINDS}
            moved = [after[k] for k in KEY_KINDS if after[k] != before[k]]
            _log.info("keyring reloaded; active now: %s", ", ".join(moved) or "unchanged")
        return changed

    def _record(self, actor: str, message: str) -> None:
        if self.audit is None:
            raise KeysError("no-audit", "key operations must be audited")
        self.audit.append(user=actor, message=message, result=True, ip=_OPERATOR_IP)

    def rotate(self, kinds: Iterable[str], *, actor: str) -> list[KeyVersion]:
        """Give each of ``kinds`` a new active key; returns the new versions.

        Raises:
            KeysError: ``unknown-kind``, ``keyring-full``, ``keyring-busy``,
                ``keyring-invalid``, ``keyring-rollback``.
        """
        wanted = list(dict.fromkeys(kinds))
        for kind in wanted:
            if kind not in KEY_KINDS:
                raise KeysError("unknown-kind", f"no key kind {kind!r} (one of "
                                f"{', '.join(KEY_KINDS)})")
        if self.audit is None:
            raise KeysError("no-audit", "key operations must be audited")
        now = int(self._clock())
        ring = self._swap(lambda r: r.rotated(wanted, now=now))
        made = [ring.active(kind) for kind in wanted]
        for version in made:
            _log.info("rotated: %s is the active %s key", version.kid, version.kind)
            self._record(actor, f"key_rotate: {version.kid}")
        return made

    def due(self, rotate_after_s: int) -> list[str]:
        """The kinds whose active key is at least ``rotate_after_s`` old."""
        now = int(self._clock())
        return [kind for kind in KEY_KINDS
                if (created := self.live.ring.active(kind).created) is not None
                and now - created >= rotate_after_s]

    def check(self, rotate_after_s: int | None) -> list[KeyVersion]:
        """One round of the server's watch: pick up others' rotations, then
        rotate what is due (``None``: no scheduled rotation)."""
        self.refresh()
        if rotate_after_s is None:
            return []
        kinds = self.due(rotate_after_s)
        return self.rotate(kinds, actor="scheduled rotation") if kinds else []

    def reseal(self, *, actor: str, batch: int = 500,
               progress: Callable[[str, int], None] | None = None) -> ResealReport:
        """Re-seal every row not under the active record key, in batches of
        ``batch`` rows (one short transaction each), while the server runs.

        Interrupted, it is run again: rows done stay done.
        """
        if self.audit is None:
            raise KeysError("no-audit", "key operations must be audited")
        if not 1 <= batch <= 10_000:
            raise KeysError("bad-batch", f"batch must be 1..10000 rows, not {batch}")
        self.refresh()
        kid = self.live.ring.active("record").kid
        tables: dict[str, int] = {}
        for table in self._db.sealed_tables:
            after: str | None = None
            done = 0
            while True:
                step = self._db.reseal_batch(table, after=after, limit=batch)
                done += step.resealed
                if progress is not None and step.resealed:
                    progress(table, done)
                if step.after is None:
                    break
                after = step.after
            tables[table] = done
        total = sum(tables.values())
        self._record(actor, f"key_reseal: {total} rows to {kid}")
        return ResealReport(kid, total, tables)

    def status(self) -> dict[str, object]:
        """Every key version (never key bytes) and the rows per record key."""
        ring = self.live.ring
        rows: dict[int, int] = {}
        for table in self._db.sealed_tables:
            for version, n in self._db.count_by_key(table).items():
                rows[version] = rows.get(version, 0) + n
        kinds: dict[str, object] = {}
        for kind in KEY_KINDS:
            active = ring.active(kind).version
            kinds[kind] = [
                {"kid": v.kid, "created": v.created, "active": v.version == active,
                 "derived": v.derived,
                 **({"rows": rows.get(v.version, 0)} if kind == "record" else {})}
                for v in ring.versions(kind)]
        return {"since": ring.since, "kinds": kinds,
                "unreadable_rows": rows.get(-1, 0)}
