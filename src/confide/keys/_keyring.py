"""The platform keyring: versioned long-lived keys, one active per kind.

Four kinds of key protect what the platform keeps (docs/security.md, "Key
rotation"):

===========  ======================  =====  ======================================
kind         derivation label (v1)   bytes  protects
===========  ======================  =====  ======================================
``record``   ``record-seal``         32     every database row (AES-256-GCM)
``audit``    ``audit-chain``         32     the audit log's HMAC chain
``presign``  ``blob-presign``        32     presigned blob-store URLs (HMAC)
``token``    ``token-sign``          64     session tokens (HS512 JWTs)
===========  ======================  =====  ======================================

Version 1 of each kind is derived from the root secret (what every release
before the keyring used, so data written then reads as version 1). Each
rotation adds version ``n + 1``: 32 or 64 fresh random bytes, which becomes
the active key; older versions stay in the ring so what they protect keeps
opening and verifying. A key id (kid) names a version: ``record-3``.

The ring is kept as one blob (:meth:`KeyRing.seal`): CBOR encrypted with
AES-256-GCM under a key derived from the root secret (label ``keyring``), so it
opens wherever the root secret is (every control-plane node sharing the
database) and nowhere else. :class:`LiveKeys` is the running view: consumers
ask it for the active key and for a version by number, it reloads the ring
when asked for a version it does not know (another node or ``confide keys
rotate`` added it), and it never accepts a ring that drops or changes a key it
already holds (a rolled-back blob is refused while the process runs).
"""

from __future__ import annotations

import hmac
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from confide._suspend import holding
from confide.keys._errors import KeysError
from confide.keys._root_secret import RootSecret

__all__ = [
    "KEY_KINDS",
    "KeyRing",
    "KeyVersion",
    "KindKeys",
    "LiveKeys",
    "parse_kid",
]

#: kind -> (root-secret derivation label of version 1, key length in bytes)
KEY_KINDS: Mapping[str, tuple[str, int]] = {
    "record": ("record-seal", 32),
    "audit": ("audit-chain", 32),
    "presign": ("blob-presign", 32),
    "token": ("token-sign", 64),
}
MAX_VERSION = 2**32 - 1  # a record's header holds the version in 4 bytes
MAX_VERSIONS_PER_KIND = 1000
_MAX_RING_BYTES = 1 << 20
_MAGIC = b"CONFIDE-KEYRING-1"
_AD = b"confide/keyring/v1"
_FORMAT = 1
_KID = re.compile(r"([a-z]+)-([1-9][0-9]{0,9})\Z")


def parse_kid(kid: str, kind: str) -> int:
    """The version a kid such as ``token-3`` names, checked to be of ``kind``.

    Raises:
        KeysError: ``bad-kid`` (malformed, another kind or out of range).
    """
    match = _KID.match(kid) if isinstance(kid, str) and len(kid) <= 32 else None
    if match is None or match.group(1) != kind:
        raise KeysError("bad-kid", f"not a {kind} key id: {str(kid)[:40]!r}")
    version = int(match.group(2))
    if version > MAX_VERSION:
        raise KeysError("bad-kid", f"key version out of range: {version}")
    return version


@dataclass(frozen=True)
class KeyVersion:
    """What may be shown of a key: never its bytes.

    ``created`` is Unix seconds; for version 1 (derived from the root secret)
    it is when the ring was first written, ``None`` before that.
    """

    kind: str
    version: int
    created: int | None
    derived: bool

    @property
    def kid(self) -> str:
        return f"{self.kind}-{self.version}"


class KeyRing:
    """An immutable snapshot of every key version of every kind."""

    __slots__ = ("_created", "_keys", "_root", "since")

    def __init__(self, root: RootSecret, since: int | None = None,
                 rotated: Iterable[tuple[str, int, int, bytes]] = ()) -> None:
        """Version 1 of each kind from ``root``, plus ``rotated`` versions
        ``(kind, version, created, key)`` numbered 2, 3, ... without gaps.

        Raises:
            KeysError: ``keyring-invalid`` on an unknown kind, a gap, a wrong length.
        """
        self._root = root
        self.since = since
        self._keys: dict[str, list[bytes]] = {}
        self._created: dict[str, list[int | None]] = {}
        for kind, (label, length) in KEY_KINDS.items():
            self._keys[kind] = [root.derive(label, length)]
            self._created[kind] = [since]
        for kind, version, created, key in rotated:
            if kind not in KEY_KINDS:
                raise KeysError("keyring-invalid", f"unknown key kind {kind!r}")
            if version != len(self._keys[kind]) + 1 or version > MAX_VERSION:
                raise KeysError("keyring-invalid", f"{kind} versions are not 1, 2, 3...")
            if len(self._keys[kind]) >= MAX_VERSIONS_PER_KIND:
                raise KeysError("keyring-invalid", f"more than {MAX_VERSIONS_PER_KIND} "
                                f"{kind} keys")
            if len(key) != KEY_KINDS[kind][1] or not 0 <= created < 10**12:
                raise KeysError("keyring-invalid", f"{kind}-{version} is malformed")
            self._keys[kind].append(bytes(key))
            self._created[kind].append(created)

    # -- reading ------------------------------------------------------------
    def versions(self, kind: str) -> list[KeyVersion]:
        """Every version of ``kind``, oldest first (the last one is active)."""
        self._check_kind(kind)
        return [KeyVersion(kind, i + 1, created, i == 0)
                for i, created in enumerate(self._created[kind])]

    def active(self, kind: str) -> KeyVersion:
        return self.versions(kind)[-1]

    def active_key(self, kind: str) -> tuple[int, bytes]:
        """``(version, key bytes)`` of the active key of ``kind``."""
        keys = self._keys[kind]
        return len(keys), keys[-1]

    def key(self, kind: str, version: int) -> bytes | None:
        """The bytes of ``kind`` version ``version``; ``None`` when the ring has none."""
        keys = self._keys.get(kind)
        if keys is None or not 1 <= version <= len(keys):
            return None
        return keys[version - 1]

    def extends(self, other: KeyRing) -> bool:
        """Whether this ring holds every key of ``other``, byte for byte."""
        for kind, keys in other._keys.items():
            mine = self._keys[kind]
            if len(mine) < len(keys) or not all(
                    hmac.compare_digest(a, b) for a, b in zip(mine, keys, strict=False)):
                return False
        return True

    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in KEY_KINDS:
            raise KeysError("unknown-kind", f"no key kind {kind!r} (one of "
                            f"{', '.join(KEY_KINDS)})")

    # -- changing -----------------------------------------------------------
    def _rotated_entries(self) -> list[tuple[str, int, int, bytes]]:
        return [(kind, i + 1, int(self._created[kind][i] or 0), keys[i])
                for kind, keys in self._keys.items() for i in range(1, len(keys))]

    def started(self, now: int) -> KeyRing:
        """This ring with its start time set (when version 1 is first recorded)."""
        return KeyRing(self._root, self.since if self.since is not None else now,
                       self._rotated_entries())

    def rotated(self, kinds: Iterable[str], *, now: int,
                randbytes: Callable[[int], bytes] = os.urandom) -> KeyRing:
        """A new ring where each of ``kinds`` has a fresh active version.

        Raises:
            KeysError: ``unknown-kind``, ``keyring-full``.
        """
        entries = self._rotated_entries()
        for kind in dict.fromkeys(kinds):
            self._check_kind(kind)
            version = len(self._keys[kind]) + 1
            if version > MAX_VERSIONS_PER_KIND:
                raise KeysError("keyring-full", f"{kind} has {MAX_VERSIONS_PER_KIND} keys")
            entries.append((kind, version, now, randbytes(KEY_KINDS[kind][1])))
        return KeyRing(self._root, self.since if self.since is not None else now, entries)

    # -- persistence --------------------------------------------------------
    @staticmethod
    def _aead(root: RootSecret) -> AESGCM:
        return AESGCM(root.derive("keyring", 32))

    def seal(self) -> bytes:
        """``magic ‖ nonce(12) ‖ AES-GCM(CBOR ring)`` under the root secret's keyring key."""
        body = cbor2.dumps({"format": _FORMAT, "since": self.since,
                            "keys": [list(e) for e in self._rotated_entries()]})
        nonce = os.urandom(12)
        return _MAGIC + nonce + self._aead(self._root).encrypt(nonce, body, _AD)

    @classmethod
    def open(cls, blob: bytes, root: RootSecret) -> KeyRing:
        """Reverse :meth:`seal`.

        Raises:
            KeysError: ``keyring-invalid`` (not a ring, tampered, other platform, malformed).
        """
        if len(blob) > _MAX_RING_BYTES or not blob.startswith(_MAGIC) \
                or len(blob) < len(_MAGIC) + 28:
            raise KeysError("keyring-invalid", "not a sealed keyring")
        body = blob[len(_MAGIC):]
        try:
            plain = cls._aead(root).decrypt(body[:12], body[12:], _AD)
        except InvalidTag as e:
            raise KeysError("keyring-invalid", "the keyring does not authenticate "
                            "(tampered, or another platform's)") from e
        try:
            raw = cbor2.loads(plain)
        except (cbor2.CBORDecodeError, ValueError) as e:
            raise KeysError("keyring-invalid", "malformed keyring") from e
        if not isinstance(raw, dict) or raw.get("format") != _FORMAT \
                or not isinstance(raw.get("keys"), list):
            raise KeysError("keyring-invalid", "unknown keyring format")
        since = raw.get("since")
        if since is not None and (not isinstance(since, int) or isinstance(since, bool)):
            raise KeysError("keyring-invalid", "malformed keyring start time")
        entries: list[tuple[str, int, int, bytes]] = []
        for item in raw["keys"]:
            if not (isinstance(item, list) and len(item) == 4 and isinstance(item[0], str)
                    and type(item[1]) is int and type(item[2]) is int
                    and isinstance(item[3], bytes)):
                raise KeysError("keyring-invalid", "malformed keyring entry")
            entries.append((item[0], item[1], item[2], item[3]))
        return cls(root, since, entries)

    def __repr__(self) -> str:
        active = ", ".join(self.active(k).kid for k in KEY_KINDS)
        return f"KeyRing(active: {active})"


class KindKeys:
    """The keys of one kind as a consumer sees them (``confide.crypto.records.VersionedKey``)."""

    __slots__ = ("_kind", "_live")

    def __init__(self, live: LiveKeys, kind: str) -> None:
        self._live = live
        self._kind = kind

    @property
    def kind(self) -> str:
        return self._kind

    def active(self) -> tuple[int, bytes]:
        """``(version, key)`` to protect new data with."""
        return self._live.ring.active_key(self._kind)

    def key(self, version: int) -> bytes | None:
        """The key of ``version`` (reloading the ring once if it is unknown); ``None``: none."""
        return self._live.lookup(self._kind, version)


class LiveKeys:
    """The ring a process uses now; replaced as rotations happen, never rolled back."""

    def __init__(self, ring: KeyRing, loader: Callable[[], KeyRing] | None = None) -> None:
        """``loader`` reads the stored ring (for reloads)."""
        self._ring = ring
        self._loader = loader
        self._lock = threading.Lock()
        self._reloading = threading.Lock()

    @property
    def ring(self) -> KeyRing:
        return self._ring

    def view(self, kind: str) -> KindKeys:
        KeyRing._check_kind(kind)
        return KindKeys(self, kind)

    def set_loader(self, loader: Callable[[], KeyRing]) -> None:
        self._loader = loader

    def install(self, ring: KeyRing) -> bool:
        """Use ``ring`` from now on; ``True`` if it changed anything.

        Raises:
            KeysError: ``keyring-rollback`` when ``ring`` lacks or changes a key
                this process holds (the stored ring was rolled back or replaced).
        """
        with self._lock:
            if not ring.extends(self._ring):
                raise KeysError("keyring-rollback", "the stored keyring lacks keys this "
                                "process holds: refusing it (rolled back or replaced?)")
            changed = not self._ring.extends(ring) or self._ring.since != ring.since
            self._ring = ring
            return changed

    def reload(self) -> bool:
        """Read the stored ring and install it; ``True`` if it changed anything."""
        if self._loader is None:
            return False
        return self.install(self._loader())

    def lookup(self, kind: str, version: int) -> bytes | None:
        """The key of ``kind`` version ``version``, reloading the ring when it is unknown.

        Reloads are one at a time (callers missing the same key wait for one
        read, then find it); a version no ring can hold reads nothing.
        """
        key = self._ring.key(kind, version)
        if key is not None or self._loader is None or not 1 <= version <= MAX_VERSIONS_PER_KIND:
            return key
        with holding(self._reloading):  # held across the read: callers may be greenlets
            key = self._ring.key(kind, version)  # another caller's reload may have found it
            if key is not None:
                return key
            try:
                self.reload()
            except Exception:  # noqa: BLE001 - a failed reload is "unknown key": the caller refuses
                return None
            return self._ring.key(kind, version)
