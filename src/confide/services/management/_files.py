"""Data files: inputs, outputs, fusion outputs (spec §3.5)."""

from __future__ import annotations

import secrets
import urllib.parse
import uuid

from ... import crypto
from ...errors import Code, ServiceError
from ...storage import Txn
from .._idempotency import IdempotencyKey, run_idempotent
from .._identity import Principal
from .._records import CryptoInfo, FileRecord, IdKind, new_id, parse_id
from ._common import Context, check_len, internal

__all__ = ["Files", "validate_crypto_info"]

FUSION_BASE = "fusion:///TEACLAVE_FUSION_BASE/"


def validate_crypto_info(schema: str, key: bytes, iv: bytes) -> None:
    """Teaclave's crypto-info rules (spec §3.5); failures are INTERNAL with its text."""
    try:
        crypto.validate_crypto_info(schema, key, iv)
    except crypto.CryptoInfoError as e:
        raise internal(str(e)) from e


def _invalid_data() -> ServiceError:
    return ServiceError(Code.INVALID_ARGUMENT, "invalid data id")


class Files:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def _check_url(self, url: str) -> str:
        check_len(url, self._ctx.limits.max_url_chars, "url")
        parsed = urllib.parse.urlsplit(url)
        if not parsed.scheme:
            raise internal("RelativeUrlWithoutBase")
        return url

    def register_input(self, who: Principal, url: str, cmac: bytes,
                       crypto: CryptoInfo | None, plaintext_size: int | None = None,
                       idem: IdempotencyKey | None = None) -> str:
        """Register an input; ``plaintext_size`` is the owner's declaration (confide.v1)."""
        self._check_url(url)
        if len(cmac) != 16:
            raise internal("Invalid length")
        if crypto is None:
            raise internal('"missing crypto_info"')
        validate_crypto_info(crypto.schema, crypto.key, crypto.iv)
        record = FileRecord(new_id(IdKind.INPUT), url, crypto, [who.user_id], cmac,
                            plaintext_size)
        return self._insert(record, idem)

    def _insert(self, record: FileRecord, idem: IdempotencyKey | None) -> str:
        def insert(txn: Txn) -> str:
            record.insert(txn)
            return record.id

        return run_idempotent(self._ctx.db, idem, insert)

    def register_output(self, who: Principal, url: str, crypto: CryptoInfo | None,
                        idem: IdempotencyKey | None = None) -> str:
        self._check_url(url)
        if crypto is None:
            raise internal('"missing crypto_info"')
        validate_crypto_info(crypto.schema, crypto.key, crypto.iv)
        record = FileRecord(new_id(IdKind.OUTPUT), url, crypto, [who.user_id], None)
        return self._insert(record, idem)

    def update(self, who: Principal, data_id: str, url: str, *, kind: str) -> str:
        fid = parse_id(data_id)
        if fid is None:
            raise internal(f"invalid uuid in data id {data_id[:80]!r}")
        with self._ctx.db.write() as txn:
            old = FileRecord.load(txn, fid) if fid.startswith(kind + "-") else None
            if old is None:
                raise _invalid_data()
            if set(old.owners) != {who.user_id}:
                raise ServiceError.permission_denied()
            self._check_url(url)
            new = FileRecord(new_id(kind), url, old.crypto, list(old.owners),
                             old.cmac if kind == IdKind.INPUT else None,
                             old.plaintext_size if kind == IdKind.INPUT else None)
            new.insert(txn)
        return new.id

    def get(self, who: Principal, data_id: str, *, kind: str) -> FileRecord:
        fid = parse_id(data_id)
        if fid is None or not fid.startswith(kind + "-"):
            raise _invalid_data()
        with self._ctx.db.read() as txn:
            record = FileRecord.load(txn, fid)
        if record is None:
            raise _invalid_data()
        if who.user_id not in record.owners:
            raise ServiceError.permission_denied()
        return record

    def register_fusion_output(self, who: Principal, owners: list[str],
                               idem: IdempotencyKey | None = None) -> str:
        if len(owners) > self._ctx.limits.max_list_items:
            raise ServiceError(Code.OUT_OF_RANGE, "too many owners")
        for uid in owners:
            check_len(uid, self._ctx.limits.max_id_chars, "owner id")
        distinct = list(dict.fromkeys(owners))
        if len(distinct) < 2 or who.user_id not in distinct:  # Q10 fix: distinct owners
            raise ServiceError.permission_denied()
        url = f"{FUSION_BASE}{uuid.uuid4()}.fusion"
        crypto = CryptoInfo("teaclave-file-128", secrets.token_bytes(16), b"")
        record = FileRecord(new_id(IdKind.OUTPUT), url, crypto, distinct, None)
        return self._insert(record, idem)

    def register_input_from_output(self, who: Principal, data_id: str) -> str:
        fid = parse_id(data_id)
        if fid is None or not fid.startswith(IdKind.OUTPUT + "-"):
            raise _invalid_data()
        with self._ctx.db.write() as txn:
            out = FileRecord.load(txn, fid)
            if out is None:
                raise _invalid_data()
            if who.user_id not in out.owners:
                raise ServiceError.permission_denied()
            if out.cmac is None:
                raise ServiceError(Code.INVALID_ARGUMENT, "invalid output file")
            input_id = IdKind.INPUT + fid[len(IdKind.OUTPUT):]
            record = FileRecord(input_id, out.url, out.crypto, list(out.owners), out.cmac)
            if FileRecord.load(txn, input_id, lock=True) is None:
                record.insert(txn)
            else:
                record.save(txn)
        return input_id
