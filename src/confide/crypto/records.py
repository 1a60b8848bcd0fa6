"""Sealing of database records (DESIGN.md, storage/).

The database is untrusted for confidentiality AND integrity. Each row's body
is encrypted with AES-256-GCM; the associated data binds the table, the row id
and every plaintext index column, so the tag is a MAC over the whole row: an
operator who edits, swaps or copies a row between ids is detected. Rolling a
row back to an older valid version is not detected (docs/security.md).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["RecordSealer", "TamperedRecord"]

_VERSION = b"\x01"


class TamperedRecord(Exception):
    """A sealed row failed authentication."""


class RecordSealer:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @staticmethod
    def _ad(table: str, row_id: str, columns: Sequence[object]) -> bytes:
        return cbor2.dumps([table, row_id, list(columns)])

    def seal(self, table: str, row_id: str, columns: Sequence[object], body: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, body, self._ad(table, row_id, columns))

    def open(self, table: str, row_id: str, columns: Sequence[object], blob: bytes) -> bytes:
        if len(blob) < 29 or blob[:1] != _VERSION:
            raise TamperedRecord(f"{table}/{row_id}: malformed sealed row")
        try:
            return self._aead.decrypt(blob[1:13], blob[13:], self._ad(table, row_id, columns))
        except InvalidTag as e:
            raise TamperedRecord(f"{table}/{row_id}: row failed authentication (tampered)") from e
