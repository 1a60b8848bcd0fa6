"""Signed approvals: the canonical approval statement, its digest, signing and checking.

An approval signs a digest of everything it covers (``docs/signed-approvals.md``
specifies the encoding byte for byte; ``tests/unit/test_approvals.py`` holds
the test vectors). The encoding is *canonical*: lists are sorted, every field
has exactly one spelling, so a client and a worker that compute it from the
same task get the same bytes, and :func:`decode_statement` refuses any other
spelling (trailing bytes, unsorted lists, bad lengths).

Pure: bytes and ``now`` in, a result or an :class:`ApprovalError` out. The
worker calls :func:`verify_approvals` before it stages any input; the control
plane calls it too, but only to refuse a bad signature early.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "MAX_STATEMENT_BYTES",
    "STATEMENT_MAGIC",
    "STATEMENT_VERSION",
    "ApprovalError",
    "ApprovalGroup",
    "ApprovalStatement",
    "SignedInput",
    "SignedOutput",
    "approval_hash",
    "decode_statement",
    "fingerprint",
    "public_key_bytes",
    "sign_digest",
    "verify_approvals",
    "verify_signature",
]

STATEMENT_MAGIC = b"confide-approval\x00"
STATEMENT_VERSION = 1
SIGNATURE_CONTEXT = b"confide-approval-signature/v1\x00"
MAX_STATEMENT_BYTES = 4 * 1024 * 1024
_MAX_ITEMS = 4096
_KEY_LEN = 32
_SIG_LEN = 64


class ApprovalError(Exception):
    """An approval was refused. ``reason`` is a stable token, the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SignedInput:
    """An input as an approval covers it: no key, only what identifies the bytes."""

    name: str
    file_id: str
    cmac: bytes
    schema: str


@dataclass(frozen=True)
class SignedOutput:
    name: str
    file_id: str
    owners: tuple[str, ...]


@dataclass(frozen=True)
class ApprovalGroup:
    """``k`` of ``members`` sign for the participant named ``name`` (k-of-n)."""

    name: str
    k: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class ApprovalStatement:
    """Everything a signed approval covers (field order = encoding order)."""

    task_id: str
    function_id: str
    code_sha256: bytes
    executor_type: str
    executor: str
    function_arguments: str
    inputs: tuple[SignedInput, ...]
    outputs: tuple[SignedOutput, ...]
    participants: tuple[str, ...]
    signers: tuple[tuple[str, bytes], ...]  # (user id, raw Ed25519 public key)
    groups: tuple[ApprovalGroup, ...]
    measurements: tuple[bytes, ...]
    not_after: int  # unix seconds: no worker runs the task after this

    def __post_init__(self) -> None:
        # Canonical form: sorted lists (the constructor sorts, decode refuses unsorted).
        object.__setattr__(self, "inputs", tuple(sorted(self.inputs, key=lambda i: i.name)))
        object.__setattr__(self, "outputs", tuple(
            SignedOutput(o.name, o.file_id, tuple(sorted(o.owners)))
            for o in sorted(self.outputs, key=lambda o: o.name)))
        object.__setattr__(self, "participants", tuple(sorted(self.participants)))
        object.__setattr__(self, "signers", tuple(sorted(self.signers)))
        object.__setattr__(self, "groups", tuple(
            ApprovalGroup(g.name, g.k, tuple(sorted(g.members)))
            for g in sorted(self.groups, key=lambda g: g.name)))
        object.__setattr__(self, "measurements", tuple(sorted(self.measurements)))

    def encode(self) -> bytes:
        """The canonical bytes (docs/signed-approvals.md)."""
        out = [STATEMENT_MAGIC, struct.pack(">H", STATEMENT_VERSION),
               _s(self.task_id), _s(self.function_id), _b(self.code_sha256),
               _s(self.executor_type), _s(self.executor), _s(self.function_arguments),
               _n(self.inputs)]
        for i in self.inputs:
            out += [_s(i.name), _s(i.file_id), _b(i.cmac), _s(i.schema)]
        out.append(_n(self.outputs))
        for o in self.outputs:
            out += [_s(o.name), _s(o.file_id), _strs(o.owners)]
        out.append(_strs(self.participants))
        out.append(_n(self.signers))
        for uid, key in self.signers:
            out += [_s(uid), _b(key)]
        out.append(_n(self.groups))
        for g in self.groups:
            out += [_s(g.name), struct.pack(">I", g.k), _strs(g.members)]
        out.append(_n(self.measurements))
        out += [_b(m) for m in self.measurements]
        out.append(struct.pack(">Q", self.not_after))
        return b"".join(out)

    def digest(self) -> bytes:
        """SHA-256 of :meth:`encode`: what every approval signs."""
        return hashlib.sha256(self.encode()).digest()

    def key_of(self, user_id: str) -> bytes | None:
        for uid, key in self.signers:
            if uid == user_id:
                return key
        return None


def _s(text: str) -> bytes:
    return _b(text.encode("utf-8"))


def _b(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _n(items: Sequence[object]) -> bytes:
    return struct.pack(">I", len(items))


def _strs(items: Sequence[str]) -> bytes:
    return _n(items) + b"".join(_s(x) for x in items)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._d = data
        self._p = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self._p + n > len(self._d):
            raise ApprovalError("statement-malformed", "approval statement is truncated")
        out = self._d[self._p:self._p + n]
        self._p += n
        return out

    def u32(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])

    def count(self) -> int:
        n = self.u32()
        if n > _MAX_ITEMS:
            raise ApprovalError("statement-malformed", f"a list of {n} items is over the cap")
        return n

    def b(self) -> bytes:
        return self.take(self.u32())

    def s(self) -> str:
        try:
            return self.b().decode("utf-8")
        except UnicodeDecodeError as e:
            raise ApprovalError("statement-malformed", "a text field is not UTF-8") from e

    def strs(self) -> tuple[str, ...]:
        return tuple(self.s() for _ in range(self.count()))

    def done(self) -> bool:
        return self._p == len(self._d)


def decode_statement(data: bytes) -> ApprovalStatement:
    """Parse canonical statement bytes; refuses any non-canonical spelling.

    Raises:
        ApprovalError: ``statement-malformed`` or ``statement-version``.
    """
    if len(data) > MAX_STATEMENT_BYTES:
        raise ApprovalError("statement-malformed", "approval statement is over the size cap")
    r = _Reader(data)
    if r.take(len(STATEMENT_MAGIC)) != STATEMENT_MAGIC:
        raise ApprovalError("statement-malformed", "not an approval statement")
    version = int(struct.unpack(">H", r.take(2))[0])
    if version != STATEMENT_VERSION:
        raise ApprovalError("statement-version", f"approval statement version {version} "
                            f"is not supported (this code reads {STATEMENT_VERSION})")
    task_id, function_id, code = r.s(), r.s(), r.b()
    executor_type, executor, arguments = r.s(), r.s(), r.s()
    inputs = tuple(SignedInput(r.s(), r.s(), r.b(), r.s()) for _ in range(r.count()))
    outputs = tuple(SignedOutput(r.s(), r.s(), r.strs()) for _ in range(r.count()))
    participants = r.strs()
    signers = tuple((r.s(), r.b()) for _ in range(r.count()))
    groups = tuple(ApprovalGroup(r.s(), r.u32(), r.strs()) for _ in range(r.count()))
    measurements = tuple(r.b() for _ in range(r.count()))
    not_after = int(struct.unpack(">Q", r.take(8))[0])
    if not r.done():
        raise ApprovalError("statement-malformed", "trailing bytes after the statement")
    statement = ApprovalStatement(task_id, function_id, code, executor_type, executor,
                                  arguments, inputs, outputs, participants, signers, groups,
                                  measurements, not_after)
    if statement.encode() != data:
        raise ApprovalError("statement-malformed", "approval statement is not canonical "
                            "(lists must be sorted)")
    return statement


def public_key_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(public_key: bytes) -> str:
    """What users compare out of band: SHA-256 of the raw key, as 8 groups of 4 hex."""
    h = hashlib.sha256(public_key).hexdigest()[:32]
    return ":".join(h[i:i + 4] for i in range(0, 32, 4))


def sign_digest(private_key: Ed25519PrivateKey, digest: bytes) -> bytes:
    """The signature over one statement digest."""
    return private_key.sign(SIGNATURE_CONTEXT + digest)


def verify_signature(public_key: bytes, digest: bytes, signature: bytes) -> None:
    """Raises ``ApprovalError("signature-invalid")`` unless ``signature`` verifies."""
    if len(public_key) != _KEY_LEN or len(signature) != _SIG_LEN:
        raise ApprovalError("signature-invalid", "signature or key has the wrong length")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, SIGNATURE_CONTEXT + digest)
    except InvalidSignature as e:
        raise ApprovalError("signature-invalid", "signature does not verify") from e


def approval_hash(user_id: str, signature: bytes) -> bytes:
    """One approval's hash as a receipt lists it: SHA-256(lp(user id) ‖ lp(signature))."""
    return hashlib.sha256(_s(user_id) + _b(signature)).digest()


def verify_approvals(statement: ApprovalStatement, signatures: Mapping[str, bytes], *,
                     now: int, measurement: bytes | None) -> None:
    """Check that ``signatures`` approve ``statement`` under its own policy.

    Every participant signs, except a participant named by a group, for whom
    ``k`` of the group's members sign. Every signature given must verify (a bad
    one is refused, not ignored). ``measurement`` is the verifier's own (the
    worker's); None skips that check (the control plane's early check).

    Raises:
        ApprovalError: the first reason found (``expired``, ``measurement-not-allowed``,
            ``signer-unknown``, ``signature-invalid``, ``approval-missing``,
            ``group-short``, ``group-invalid``).
    """
    if now > statement.not_after:
        raise ApprovalError("expired", f"the approvals expired at {statement.not_after} "
                            f"(unix seconds); it is {now}")
    if measurement is not None and measurement not in statement.measurements:
        raise ApprovalError("measurement-not-allowed", f"this worker's measurement "
                            f"{measurement.hex()} is not one the approvals allow")
    digest = statement.digest()
    for uid, sig in sorted(signatures.items()):
        key = statement.key_of(uid)
        if key is None:
            raise ApprovalError("signer-unknown", f"{uid} signed but is not a signer of the "
                                "approved statement")
        try:
            verify_signature(key, digest, sig)
        except ApprovalError as e:
            raise ApprovalError("signature-invalid", f"the approval of {uid} does not verify "
                                "over this task (a field changed since it was signed)") from e
    groups = {g.name: g for g in statement.groups}
    for participant in statement.participants:
        group = groups.get(participant)
        if group is None:
            if participant not in signatures:
                raise ApprovalError("approval-missing", f"no signed approval of {participant}")
            continue
        if not 1 <= group.k <= len(group.members):
            raise ApprovalError("group-invalid", f"group {group.name}: k={group.k} of "
                                f"{len(group.members)} members")
        got = sum(1 for m in group.members if m in signatures)
        if got < group.k:
            raise ApprovalError("group-short", f"group {group.name} needs {group.k} signed "
                                f"approvals of {', '.join(group.members)}; has {got}")
