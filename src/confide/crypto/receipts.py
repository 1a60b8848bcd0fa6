"""Task receipts: what a worker signs with its attested key when a task ends.

A receipt is CBOR: ``{"v": 1, "body": bytes, "signature": bytes, "evidence":
{"tee": str, "quote": bytes, "collateral": bytes, "produced_at": int}}``. The
body is canonical bytes (``docs/signed-approvals.md`` "Receipts"): task id,
the approval statement's digest, the approvals' hashes, the input cmacs
consumed, the output cmacs produced, the return value's hash, start and end
time, the outcome, and the worker's Ed25519 key. The evidence's report data
is :func:`receipt_report_data` of that key, so a verifier appraising the
evidence learns that the key lives in a TEE running the measured code.

This module parses and checks the signature only; appraising the evidence is
``confide.client.verify_receipt`` (it needs the trust roots).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .approvals import ApprovalError, _b, _n, _Reader, _s, public_key_bytes

__all__ = [
    "MAX_RECEIPT_BYTES",
    "Receipt",
    "ReceiptBody",
    "ReceiptEvidence",
    "decode_receipt",
    "receipt_report_data",
    "sign_receipt",
]

RECEIPT_MAGIC = b"confide-receipt\x00"
RECEIPT_VERSION = 1
RECEIPT_CONTEXT = b"confide-receipt-signature/v1\x00"
REPORT_DATA_CONTEXT = b"confide/receipt-key/v1"
MAX_RECEIPT_BYTES = 1024 * 1024
_MAX_ITEMS = 4096


def receipt_report_data(public_key: bytes) -> bytes:
    """The 64-byte report data binding a worker's receipt key: SHA-512(context ‖ lp(key))."""
    return hashlib.sha512(REPORT_DATA_CONTEXT + _b(public_key)).digest()


@dataclass(frozen=True)
class ReceiptBody:
    task_id: str
    statement_digest: bytes  # b"" for a task without signed approvals
    approvals: tuple[bytes, ...]  # approval_hash of each signature the worker verified
    inputs: tuple[tuple[str, bytes], ...]  # (data name, cmac) consumed
    outputs: tuple[tuple[str, bytes], ...]  # (data name, cmac) produced
    return_value_sha256: bytes
    started_ms: int
    ended_ms: int
    outcome: str  # "ok" or "error: <reason>"
    worker_key: bytes  # raw Ed25519 public key
    evidence_sha256: bytes = b""  # SHA-256 of the evidence map's CBOR: binds every byte of it

    def encode(self) -> bytes:
        out = [RECEIPT_MAGIC, struct.pack(">H", RECEIPT_VERSION), _s(self.task_id),
               _b(self.statement_digest), _n(self.approvals)]
        out += [_b(a) for a in sorted(self.approvals)]
        for pairs in (self.inputs, self.outputs):
            out.append(_n(pairs))
            for name, cmac in sorted(pairs):
                out += [_s(name), _b(cmac)]
        out += [_b(self.return_value_sha256), struct.pack(">QQ", self.started_ms, self.ended_ms),
                _s(self.outcome), _b(self.worker_key), _b(self.evidence_sha256)]
        return b"".join(out)

    @classmethod
    def decode(cls, data: bytes) -> ReceiptBody:
        r = _Reader(data)
        if r.take(len(RECEIPT_MAGIC)) != RECEIPT_MAGIC:
            raise ApprovalError("receipt-malformed", "not a receipt body")
        if struct.unpack(">H", r.take(2))[0] != RECEIPT_VERSION:
            raise ApprovalError("receipt-malformed", "unsupported receipt version")
        task_id, digest = r.s(), r.b()
        approvals = tuple(r.b() for _ in range(r.count()))
        inputs = tuple((r.s(), r.b()) for _ in range(r.count()))
        outputs = tuple((r.s(), r.b()) for _ in range(r.count()))
        rv = r.b()
        started, ended = struct.unpack(">QQ", r.take(16))
        outcome, key, evidence_hash = r.s(), r.b(), r.b()
        if not r.done():
            raise ApprovalError("receipt-malformed", "trailing bytes after the receipt body")
        body = cls(task_id, digest, approvals, inputs, outputs, rv, int(started), int(ended),
                   outcome, key, evidence_hash)
        if body.encode() != data:
            raise ApprovalError("receipt-malformed", "receipt body is not canonical")
        return body


@dataclass(frozen=True)
class ReceiptEvidence:
    tee: str
    quote: bytes
    collateral: bytes
    produced_at: int  # unix seconds


@dataclass(frozen=True)
class Receipt:
    """A parsed receipt whose signature verified under ``body.worker_key``.

    The key is not trusted yet: appraise ``evidence`` (report data =
    :func:`receipt_report_data` of the key) before relying on it.
    """

    raw: bytes
    body: ReceiptBody
    signature: bytes
    evidence: ReceiptEvidence


def sign_receipt(key: Ed25519PrivateKey, body: ReceiptBody, evidence: ReceiptEvidence) -> bytes:
    """The receipt file: body, signature and the worker's evidence (CBOR)."""
    if body.worker_key != public_key_bytes(key.public_key()):
        raise ValueError("the receipt body names another key")
    ev = _evidence_map(evidence)
    body = dataclasses.replace(body, evidence_sha256=hashlib.sha256(cbor2.dumps(ev)).digest())
    encoded = body.encode()
    return cbor2.dumps({"v": RECEIPT_VERSION, "body": encoded,
                        "signature": key.sign(RECEIPT_CONTEXT + encoded), "evidence": ev})


def _evidence_map(evidence: ReceiptEvidence) -> dict[str, object]:
    return {"tee": evidence.tee, "quote": evidence.quote, "collateral": evidence.collateral,
            "produced_at": evidence.produced_at}


def _field(d: Mapping[Any, Any], name: str, kind: type) -> Any:
    value = d.get(name)
    if not isinstance(value, kind):
        raise ApprovalError("receipt-malformed", f"receipt field {name!r} is missing or "
                            f"not {kind.__name__}")
    return value


def decode_receipt(data: bytes) -> Receipt:
    """Parse a receipt and verify its signature under the key it names.

    Raises:
        ApprovalError: ``receipt-malformed`` or ``receipt-signature``.
    """
    if len(data) > MAX_RECEIPT_BYTES:
        raise ApprovalError("receipt-malformed", "receipt is over the size cap")
    try:
        top = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, RecursionError) as e:
        raise ApprovalError("receipt-malformed", f"receipt is not CBOR: {e}") from e
    if not isinstance(top, dict) or top.get("v") != RECEIPT_VERSION:
        raise ApprovalError("receipt-malformed", "not a version 1 receipt")
    encoded = _field(top, "body", bytes)
    signature = _field(top, "signature", bytes)
    ev = _field(top, "evidence", dict)
    evidence = ReceiptEvidence(_field(ev, "tee", str), _field(ev, "quote", bytes),
                               _field(ev, "collateral", bytes), _field(ev, "produced_at", int))
    if cbor2.dumps(top) != data:
        raise ApprovalError("receipt-malformed", "receipt is not in canonical CBOR form")
    body = ReceiptBody.decode(encoded)
    try:
        if len(body.worker_key) != 32:
            raise ValueError("bad key length")
        Ed25519PublicKey.from_public_bytes(body.worker_key).verify(
            signature, RECEIPT_CONTEXT + encoded)
    except (InvalidSignature, ValueError) as e:
        raise ApprovalError("receipt-signature", "the receipt's signature does not verify "
                            "under the worker key it names") from e
    if not hmac.compare_digest(body.evidence_sha256,
                               hashlib.sha256(cbor2.dumps(_evidence_map(evidence))).digest()):
        raise ApprovalError("receipt-signature", "the receipt's evidence is not the one the "
                            "worker signed")
    return Receipt(raw=data, body=body, signature=signature, evidence=evidence)
