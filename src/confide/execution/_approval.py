"""Signed approvals enforced inside the TEE, and the worker's signed receipts.

:class:`ApprovalGate` recomputes the approval statement from the staged task
the worker is about to run (its function payload's hash, the final arguments,
every input's id, cmac and schema, every output's id and owners, the
participants, signers, groups, allowed measurements and expiry) and verifies
every signature against it *before* any input is fetched or decrypted. A task
changed anywhere after the signers signed (in the database, by the control
plane) has another statement digest, and no signature verifies over it.

:class:`ReceiptSigner` holds an Ed25519 key made in this process at start and
evidence whose report data binds it; it signs a receipt for every task that
ends here (``crypto/receipts.py``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..attestation import Evidence
from ..crypto.approvals import (
    ApprovalError,
    ApprovalGroup,
    ApprovalStatement,
    SignedInput,
    SignedOutput,
    approval_hash,
    public_key_bytes,
    verify_approvals,
)
from ..crypto.receipts import ReceiptBody, ReceiptEvidence, receipt_report_data, sign_receipt
from ..staged import StagedTask

__all__ = ["ApprovalGate", "Approved", "ReceiptSigner", "refusal_reason", "statement_of"]


def statement_of(staged: StagedTask) -> ApprovalStatement:
    """The statement of a staged task that carries an approval (else ValueError)."""
    a = staged.approval
    if a is None:
        raise ValueError("the staged task carries no approval")
    return ApprovalStatement(
        task_id=staged.task_id, function_id=staged.function_id,
        code_sha256=hashlib.sha256(staged.function_payload).digest(),
        executor_type=staged.executor_type, executor=staged.executor,
        function_arguments=staged.function_arguments,
        inputs=tuple(SignedInput(f.name, f.file_id, f.cmac, f.schema) for f in staged.inputs),
        outputs=tuple(SignedOutput(f.name, f.file_id, f.owners) for f in staged.outputs),
        participants=a.participants, signers=a.signers,
        groups=tuple(ApprovalGroup(n, k, m) for n, k, m in a.groups),
        measurements=a.measurements, not_after=a.not_after)


@dataclass(frozen=True)
class Approved:
    """What the gate established: the digest and the approvals' hashes (for the receipt)."""

    digest: bytes
    approvals: tuple[bytes, ...]


class ApprovalGate:
    """The worker's check; ``measurement`` is this worker's own (MRENCLAVE/MRTD)."""

    def __init__(self, measurement: bytes, clock: Callable[[], float]) -> None:
        self._measurement = measurement
        self._clock = clock

    def check(self, staged: StagedTask) -> Approved | None:
        """None for a task without signed approvals; raises ``ApprovalError`` on any mismatch."""
        if staged.approval is None:
            return None
        statement = statement_of(staged)
        signatures = dict(staged.approval.signatures)
        verify_approvals(statement, signatures, now=int(self._clock()),
                         measurement=self._measurement)
        return Approved(statement.digest(),
                        tuple(approval_hash(u, s) for u, s in sorted(signatures.items())))


class ReceiptSigner:
    """The worker's receipt key and the evidence that binds it."""

    def __init__(self, key: Ed25519PrivateKey, evidence: ReceiptEvidence) -> None:
        self._key = key
        self._public = public_key_bytes(key.public_key())
        self.evidence = evidence

    @classmethod
    def attested(cls, get_evidence: Callable[[bytes], Evidence]) -> ReceiptSigner:
        """A fresh key and evidence from ``get_evidence(report_data)``."""
        key = Ed25519PrivateKey.generate()
        ev = get_evidence(receipt_report_data(public_key_bytes(key.public_key())))
        produced = ev.produced_at or dt.datetime.now(dt.UTC)
        return cls(key, ReceiptEvidence(tee=ev.tee, quote=ev.quote,
                                        collateral=ev.collateral or b"",
                                        produced_at=int(produced.timestamp())))

    def sign(self, staged: StagedTask, approved: Approved | None, *, ok: bool, reason: str,
             consumed: bool, return_value: bytes, tags: dict[str, bytes], started: float,
             ended: float) -> bytes:
        body = ReceiptBody(
            task_id=staged.task_id,
            statement_digest=b"" if approved is None else approved.digest,
            approvals=() if approved is None else approved.approvals,
            inputs=tuple((f.name, f.cmac) for f in staged.inputs) if consumed else (),
            outputs=tuple(sorted(tags.items())) if ok else (),
            return_value_sha256=hashlib.sha256(return_value).digest(),
            started_ms=int(started * 1000), ended_ms=int(ended * 1000),
            outcome="ok" if ok else f"error: {reason[:1024]}", worker_key=self._public)
        return sign_receipt(self._key, body, self.evidence)


def refusal_reason(e: ApprovalError) -> str:
    """The task's failure reason for a refused approval."""
    return f"approvals refused by the worker ({e.reason}): {e}"
