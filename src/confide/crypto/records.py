"""Sealing of database records (DESIGN.md, storage/).

The database is untrusted for confidentiality AND integrity. Each row's body
is encrypted with AES-256-GCM; the associated data binds the table, the row id
and every plaintext index column, so the tag is a MAC over the whole row: an
operator who edits, swaps or copies a row between ids is detected. Rolling a
row back to an older valid version is not detected (docs/security.md).

Row formats (the first byte says which):

* ``0x01 ‖ nonce(12) ‖ ciphertext ‖ tag``: before key rotation; always
  sealed by version 1 of the record key. Still read, never written.
* ``0x02 ‖ version(4, big-endian) ‖ nonce(12) ‖ ciphertext ‖ tag``: sealed by
  that version of the record key (kid ``record-<version>``); the version is in
  the associated data too, so a changed version is refused.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Protocol

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["FixedKey", "RecordSealer", "TamperedRecord", "VersionedKey", "row_prefix"]

_V1 = 1
_V2 = 2
_V1_MIN = 1 + 12 + 16
_V2_MIN = 1 + 4 + 12 + 16


class TamperedRecord(Exception):
    """A sealed row failed authentication."""


class VersionedKey(Protocol):
    """Versioned keys of one kind (``confide.keys.KindKeys``): one active, older kept."""

    def active(self) -> tuple[int, bytes]:
        """``(version, key)`` that protects new data."""
        ...

    def key(self, version: int) -> bytes | None:
        """The key of ``version``, ``None`` when there is none."""
        ...


class FixedKey:
    """One key that never rotates: version 1 (tests, tools given a single key)."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = bytes(key)

    def active(self) -> tuple[int, bytes]:
        return 1, self._key

    def key(self, version: int) -> bytes | None:
        return self._key if version == 1 else None


def as_versioned(key: bytes | VersionedKey) -> VersionedKey:
    """``key`` itself, or a single key wrapped as version 1."""
    return FixedKey(key) if isinstance(key, bytes | bytearray) else key


def row_prefix(version: int) -> bytes:
    """The first bytes of every row sealed by record key ``version`` (for reseal)."""
    return bytes([_V2]) + version.to_bytes(4, "big")


class RecordSealer:
    def __init__(self, key: bytes | VersionedKey) -> None:
        self._keys = as_versioned(key)
        self._aeads: dict[int, tuple[bytes, AESGCM]] = {}

    @property
    def keys(self) -> VersionedKey:
        return self._keys

    def _aead(self, version: int, key: bytes) -> AESGCM:
        cached = self._aeads.get(version)
        if cached is not None and cached[0] is key:
            return cached[1]
        aead = AESGCM(key)
        self._aeads[version] = (key, aead)
        return aead

    @staticmethod
    def _ad(table: str, row_id: str, columns: Sequence[object]) -> bytes:
        return cbor2.dumps([table, row_id, list(columns)])

    def active_version(self) -> int:
        return self._keys.active()[0]

    def seal(self, table: str, row_id: str, columns: Sequence[object], body: bytes) -> bytes:
        version, key = self._keys.active()
        nonce = secrets.token_bytes(12)
        ad = cbor2.dumps([table, row_id, list(columns), version])
        return row_prefix(version) + nonce + self._aead(version, key).encrypt(nonce, body, ad)

    @staticmethod
    def version_of(blob: bytes) -> int | None:
        """The record-key version a sealed row names (unauthenticated); ``None``: malformed."""
        if len(blob) >= _V2_MIN and blob[0] == _V2:
            return int.from_bytes(blob[1:5], "big")
        if len(blob) >= _V1_MIN and blob[0] == _V1:
            return 1
        return None

    def open(self, table: str, row_id: str, columns: Sequence[object], blob: bytes) -> bytes:
        version = self.version_of(blob)
        if version is None:
            raise TamperedRecord(f"{table}/{row_id}: malformed sealed row")
        key = self._keys.key(version)
        if key is None:
            raise TamperedRecord(f"{table}/{row_id}: sealed by an unknown key (record-{version})")
        if blob[0] == _V1:
            nonce, sealed, ad = blob[1:13], blob[13:], self._ad(table, row_id, columns)
        else:
            nonce, sealed = blob[5:17], blob[17:]
            ad = cbor2.dumps([table, row_id, list(columns), version])
        try:
            return self._aead(version, key).decrypt(nonce, sealed, ad)
        except InvalidTag as e:
            raise TamperedRecord(f"{table}/{row_id}: row failed authentication (tampered)") from e
