"""Publicly checkable proofs over the audit log (docs/security.md, "Audit for participants").

The server keeps, beside its HMAC chain, a Merkle tree over every audit entry
(the tree of RFC 9162 §2.1: leaves ``SHA-256(0x00 ‖ data)``, interior nodes
``SHA-256(0x01 ‖ left ‖ right)``, the left subtree always the largest power of
two). A participant gets the entries it may see, each with its inclusion
proof, and a tree head ``(size, root, issued)`` signed by the server's attested
TLS key. It recomputes each leaf from the entry's fields, folds the proof up to
the root and checks the signature against the certificate it attested: an
entry changed by one byte, or not in the signed tree, fails.

A leaf carries a random 16-byte salt so the sibling hashes a proof reveals say
nothing about other users' entries (a low-entropy entry like ``user_login``
could otherwise be guessed from its hash). Entries written before leaves
existed get ``SHA-256(0x02 ‖ chain MAC)``: unguessable without the audit key,
and never handed to a participant.

Pure functions; no I/O, no clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "HASH_SIZE",
    "LEAF_VERSION",
    "SALT_SIZE",
    "AuditLeaf",
    "MerkleTree",
    "TreeHead",
    "legacy_leaf_hash",
    "rfc3339",
    "tree_head_message",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
SALT_SIZE = 16
LEAF_VERSION = 1
#: The longest inclusion proof a tree of up to 2**64 leaves needs.
MAX_PROOF_HASHES = 64
_TREE_HEAD_CONTEXT = b"confide audit tree head v1\0"


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return _h(b"\x01" + left + right)


@dataclass(frozen=True)
class AuditLeaf:
    """The fields of one audit entry that its leaf hash commits to."""

    seq: int
    microsecond: int
    ip: bytes
    user: str
    message: str
    result: bool
    actor: str
    tasks: tuple[str, ...]
    functions: tuple[str, ...]
    files: tuple[str, ...]
    salt: bytes

    def encode(self) -> bytes:
        """The leaf's data: deterministic CBOR of a versioned array."""
        return cbor2.dumps([LEAF_VERSION, self.seq, self.microsecond, self.ip, self.user,
                            self.message, self.result, self.actor, list(self.tasks),
                            list(self.functions), list(self.files), self.salt])

    def hash(self) -> bytes:
        return _h(b"\x00" + self.encode())


def legacy_leaf_hash(chain_mac: bytes) -> bytes:
    """The leaf of an entry written before leaves existed (never shown to participants)."""
    return _h(b"\x02" + chain_mac)


class MerkleTree:
    """A tree over a growing list of leaf hashes: its root and inclusion proofs.

    Kept incrementally: level 0 holds the leaves, level ``L + 1`` the hashes of
    the complete pairs of level ``L``; an odd node at the end of a level is
    carried up unchanged when the root or a proof is read, which yields exactly
    RFC 9162's tree. An append costs O(1) hashes amortised; a root or a proof
    O(log n).
    """

    def __init__(self, leaves: Sequence[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        for leaf in leaves:
            self.append(leaf)

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def leaf(self, index: int) -> bytes:
        return self._levels[0][index]

    def append(self, leaf: bytes) -> None:
        self._levels[0].append(leaf)
        level = 0
        while len(self._levels[level]) % 2 == 0:
            below = self._levels[level]
            if level + 1 == len(self._levels):
                self._levels.append([])
            self._levels[level + 1].append(_node(below[-2], below[-1]))
            level += 1

    def _effective(self) -> list[tuple[int, bytes | None]]:
        """Per level up to the root: its length and its node past the stored ones.

        That extra node (the "carry") is the last node of the level below carried
        up, or the hash of the stored last node below with the carry below.
        """
        out: list[tuple[int, bytes | None]] = []
        carry: bytes | None = None
        level = 0
        while True:
            nodes = self._levels[level] if level < len(self._levels) else []
            eff_len = len(nodes) + (carry is not None)
            out.append((eff_len, carry))
            if eff_len <= 1:
                return out
            if len(nodes) % 2:
                carry = nodes[-1] if carry is None else _node(nodes[-1], carry)
            level += 1

    def _node_at(self, level: int, index: int, eff: list[tuple[int, bytes | None]]) -> bytes:
        nodes = self._levels[level] if level < len(self._levels) else []
        if index < len(nodes):
            return nodes[index]
        carry = eff[level][1]
        assert carry is not None and index == eff[level][0] - 1
        return carry

    def range_hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for the subtrees RFC 9162's proofs name (``start`` aligned)."""
        n = end - start
        if n == 1:
            return self._levels[0][start]
        if n & (n - 1) == 0 and start % n == 0:  # a complete, stored subtree
            level = n.bit_length() - 1
            if level < len(self._levels) and start // n < len(self._levels[level]):
                return self._levels[level][start // n]
        k = 1 << ((n - 1).bit_length() - 1)
        return _node(self.range_hash(start, start + k), self.range_hash(start + k, end))

    def consistency(self, first: int, second: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.4.1: the proof that the tree of ``first`` leaves is a prefix
        of the tree of ``second`` (default: all) leaves."""
        second = self.size if second is None else second
        if not 0 < first <= second <= self.size:
            raise IndexError(f"no consistency proof from {first} to {second} of {self.size}")
        proof: list[bytes] = []

        def sub(m: int, start: int, end: int, whole: bool) -> None:
            n = end - start
            if m == n:
                if not whole:
                    proof.append(self.range_hash(start, end))
                return
            k = 1 << ((n - 1).bit_length() - 1)
            if m <= k:
                sub(m, start, start + k, whole)
                proof.append(self.range_hash(start + k, end))
            else:
                sub(m - k, start + k, end, False)
                proof.append(self.range_hash(start, start + k))

        sub(first, 0, second, True)
        return proof

    @property
    def root(self) -> bytes:
        if not self.size:
            return _h(b"")
        eff = self._effective()
        return self._node_at(len(eff) - 1, 0, eff)

    def proof(self, index: int) -> list[bytes]:
        """The audit path of leaf ``index`` (0-based), bottom first."""
        if not 0 <= index < self.size:
            raise IndexError(f"leaf {index} is not in a tree of {self.size}")
        eff = self._effective()
        path: list[bytes] = []
        for level in range(len(eff) - 1):
            sibling = index ^ 1
            if sibling < eff[level][0]:
                path.append(self._node_at(level, sibling, eff))
            index //= 2
        return path


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes],
                     root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: is ``leaf_hash`` leaf ``index`` of the tree of ``size`` with ``root``?"""
    if not 0 <= index < size or len(proof) > MAX_PROOF_HASHES:
        return False
    if any(len(p) != HASH_SIZE for p in proof) or len(root) != HASH_SIZE:
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and hmac.compare_digest(r, root)


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: is the tree (``first``, ``first_root``) a prefix of
    (``second``, ``second_root``)?"""
    if not 0 < first <= second or len(proof) > 2 * MAX_PROOF_HASHES:
        return False
    if any(len(p) != HASH_SIZE for p in proof):
        return False
    if first == second:
        return not proof and hmac.compare_digest(first_root, second_root)
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _node(c, fr)
            sr = _node(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    return (sn == 0 and hmac.compare_digest(fr, first_root)
            and hmac.compare_digest(sr, second_root))


@dataclass(frozen=True)
class TreeHead:
    """The tree over the first ``size`` entries, as the server signed it at ``issued_us``."""

    size: int
    root: bytes
    issued_us: int

    def message(self) -> bytes:
        return tree_head_message(self.size, self.root, self.issued_us)

    def sign(self, key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.sign(self.message(), ec.ECDSA(hashes.SHA256()))

    def verify(self, key: ec.EllipticCurvePublicKey, signature: bytes) -> bool:
        try:
            key.verify(signature, self.message(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


def tree_head_message(size: int, root: bytes, issued_us: int) -> bytes:
    """The bytes a tree head signature covers: a context string, then CBOR [size, root, issued]."""
    return _TREE_HEAD_CONTEXT + cbor2.dumps([size, root, issued_us])


def rfc3339(microsecond: int) -> str:
    """An audit timestamp (microseconds since the epoch) as RFC 3339 UTC.

    ``2026-12-05T13:00:41.123456Z``; raises OverflowError or ValueError out of range.
    """
    when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=microsecond)
    return when.isoformat(timespec="microseconds").replace("+00:00", "Z")
