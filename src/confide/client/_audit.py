"""A participant's audit entries, verified client-side (docs/security.md, "Audit for participants").

:func:`verify_participant_audit` checks a QueryParticipantAudit answer against
the certificate this session pinned (the attested one): the tree head is signed
by that certificate's key, and every entry, recomputed from its fields, is in
the signed tree at its position. Nothing else of the log is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from ..crypto.audit_proof import (
    HASH_SIZE,
    SALT_SIZE,
    AuditLeaf,
    TreeHead,
    rfc3339,
    verify_consistency,
    verify_inclusion,
)
from ..rpc._gen import confide_v1_pb2 as v1
from ._errors import ClientError

__all__ = [
    "AuditProofError",
    "ParticipantAudit",
    "ParticipantAuditEntry",
    "SignedTreeHead",
    "check_extends",
    "verify_participant_audit",
]


class AuditProofError(ClientError):
    """The server's audit answer does not verify (code ``DATA_LOSS``, reason ``audit-proof``)."""

    def __init__(self, message: str) -> None:
        super().__init__("DATA_LOSS", message, reason="audit-proof")


@dataclass(frozen=True)
class ParticipantAuditEntry:
    seq: int
    microsecond: int
    time: str
    ip: bytes
    user: str
    message: str
    result: bool
    actor: str
    task_ids: tuple[str, ...]
    function_ids: tuple[str, ...]
    file_ids: tuple[str, ...]
    leaf_hash: bytes


@dataclass(frozen=True)
class SignedTreeHead:
    tree_size: int
    root: bytes
    issued_microsecond: int
    signature: bytes
    certificate_der: bytes

    @property
    def issued(self) -> str:
        return rfc3339(self.issued_microsecond)


@dataclass(frozen=True)
class ParticipantAudit:
    """Entries (newest first) that all verified against ``tree_head``."""

    entries: list[ParticipantAuditEntry]
    tree_head: SignedTreeHead


def _time_or_fail(microsecond: int) -> str:
    try:
        return rfc3339(microsecond)
    except (OverflowError, ValueError) as e:
        raise AuditProofError(f"entry time out of range: {microsecond}") from e


def verify_participant_audit(resp: v1.ParticipantAuditResponse,
                             pinned_certificate_der: bytes | None) -> ParticipantAudit:
    """Check the signed tree head and every entry's inclusion; raises AuditProofError."""
    if pinned_certificate_der is None:
        raise AuditProofError("no pinned server certificate to check the tree head against")
    th = resp.tree_head
    if not resp.HasField("tree_head"):
        raise AuditProofError("the answer carries no tree head")
    if th.certificate != pinned_certificate_der:
        raise AuditProofError("the tree head is signed by a certificate other than the one "
                              "this session attested")
    key = x509.load_der_x509_certificate(pinned_certificate_der).public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise AuditProofError("the attested certificate's key cannot sign tree heads")
    if len(th.root) != HASH_SIZE:
        raise AuditProofError("the tree head's root is not a SHA-256 hash")
    head = TreeHead(th.tree_size, th.root, th.issued_microsecond)
    if not head.verify(key, th.signature):
        raise AuditProofError("the tree head's signature does not verify under the "
                              "attested certificate")
    entries: list[ParticipantAuditEntry] = []
    for e in resp.entries:
        if not 1 <= e.seq <= th.tree_size:
            raise AuditProofError(f"entry #{e.seq} is outside the signed tree of "
                                  f"{th.tree_size}")
        if len(e.salt) != SALT_SIZE:
            raise AuditProofError(f"entry #{e.seq} has a malformed salt")
        time = _time_or_fail(e.microsecond)
        if e.time and e.time != time:
            raise AuditProofError(f"entry #{e.seq}: its time {e.time!r} is not its timestamp")
        leaf = AuditLeaf(e.seq, e.microsecond, bytes(e.ip), e.user, e.message, e.result,
                         e.actor, tuple(e.task_ids), tuple(e.function_ids), tuple(e.file_ids),
                         bytes(e.salt))
        leaf_hash = leaf.hash()
        if not verify_inclusion(leaf_hash, e.seq - 1, th.tree_size,
                                [bytes(p) for p in e.inclusion_proof], th.root):
            raise AuditProofError(f"entry #{e.seq} is not in the signed audit tree "
                                  "(changed, or not part of the log)")
        entries.append(ParticipantAuditEntry(
            e.seq, e.microsecond, time, bytes(e.ip), e.user, e.message, e.result, e.actor,
            tuple(e.task_ids), tuple(e.function_ids), tuple(e.file_ids), leaf_hash))
    return ParticipantAudit(entries, SignedTreeHead(th.tree_size, bytes(th.root),
                                                    th.issued_microsecond, bytes(th.signature),
                                                    bytes(th.certificate)))


def check_extends(old: tuple[int, bytes], new: tuple[int, bytes], proof: list[bytes]) -> None:
    """The signed tree ``new`` (size, root) extends ``old``, verified earlier: it did
    not shrink, and the RFC 9162 consistency proof holds (raises AuditProofError)."""
    (old_size, old_root), (new_size, new_root) = old, new
    if new_size < old_size:
        raise AuditProofError(f"the audit log shrank: a tree of {new_size} entries after one "
                              f"of {old_size}")
    if new_size == old_size:
        if new_root != old_root:
            raise AuditProofError(f"two different signed audit trees of {new_size} entries: "
                                  "the log was forked or rewritten")
        return
    if not verify_consistency(old_size, new_size, old_root, new_root, proof):
        raise AuditProofError(f"the tree of {new_size} entries does not extend the one of "
                              f"{old_size} verified before: the log was forked or rewritten")
