"""The audit Merkle tree and its proofs (crypto/audit_proof.py) against RFC 9162's definitions."""

from __future__ import annotations

import hashlib
import os

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from confide.crypto.audit_proof import (
    AuditLeaf,
    MerkleTree,
    TreeHead,
    legacy_leaf_hash,
    verify_consistency,
    verify_inclusion,
)


def _h(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1, recursively, over leaf hashes."""
    n = len(leaves)
    if n == 0:
        return _h(b"")
    if n == 1:
        return leaves[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return _h(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:]))


def _path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1, recursively."""
    n = len(leaves)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return [*_path(m, leaves[:k]), _mth(leaves[k:])]
    return [*_path(m - k, leaves[k:]), _mth(leaves[:k])]


def _leaves(n: int) -> list[bytes]:
    return [_h(b"\x00" + i.to_bytes(4, "big")) for i in range(n)]


@pytest.mark.parametrize("n", [*range(1, 40), 64, 65, 100, 127, 128, 129])
def test_root_and_every_proof_match_the_rfc_and_verify(n: int) -> None:
    leaves = _leaves(n)
    tree = MerkleTree(leaves)
    assert tree.root == _mth(leaves)
    for m in range(n):
        proof = tree.proof(m)
        assert proof == _path(m, leaves)
        assert verify_inclusion(leaves[m], m, n, proof, tree.root)


def test_empty_tree_root_is_the_hash_of_nothing() -> None:
    assert MerkleTree([]).root == _h(b"")
    with pytest.raises(IndexError):
        MerkleTree([]).proof(0)


@pytest.mark.parametrize("n", [2, 5, 17, 64])
def test_wrong_leaf_index_size_root_or_proof_fails(n: int) -> None:
    leaves = _leaves(n)
    tree = MerkleTree(leaves)
    for m in range(n):
        proof = tree.proof(m)
        other = leaves[(m + 1) % n]
        assert not verify_inclusion(other, m, n, proof, tree.root)
        assert not verify_inclusion(leaves[m], (m + 1) % n, n, proof, tree.root)
        assert not verify_inclusion(leaves[m], m, n, proof, _h(b"other root"))
        assert not verify_inclusion(leaves[m], m, n, [*proof, b"\0" * 32], tree.root)
        if proof:
            flipped = bytearray(proof[0])
            flipped[0] ^= 1
            assert not verify_inclusion(leaves[m], m, n, [bytes(flipped), *proof[1:]],
                                        tree.root)
            assert not verify_inclusion(leaves[m], m, n, proof[:-1], tree.root)
    assert not verify_inclusion(leaves[0], n, n, tree.proof(0), tree.root)
    assert not verify_inclusion(leaves[0], -1, n, tree.proof(0), tree.root)
    assert not verify_inclusion(leaves[0], 0, n, [b"short"], tree.root)


def _leaf(**over: object) -> AuditLeaf:
    fields: dict[str, object] = dict(
        seq=7, microsecond=1_700_000_000_000_000, ip=b"\0" * 16, user="{ user: a }",
        message="get_task", result=True, actor="a", tasks=("task-1",), functions=(),
        files=("input-1",), salt=b"s" * 16)
    fields.update(over)
    return AuditLeaf(**fields)  # type: ignore[arg-type]


def test_every_leaf_field_changes_the_leaf_hash() -> None:
    base = _leaf().hash()
    for name, value in [("seq", 8), ("microsecond", 1), ("ip", b"\1" * 16), ("user", "x"),
                        ("message", "get_tas"), ("result", False), ("actor", "b"),
                        ("tasks", ()), ("functions", ("f",)), ("files", ("input-2",)),
                        ("salt", b"t" * 16)]:
        assert _leaf(**{name: value}).hash() != base, name
    assert _leaf().hash() == base
    assert legacy_leaf_hash(b"m" * 32) != _leaf().hash()


def test_tree_head_signature_binds_size_root_and_time() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    head = TreeHead(5, os.urandom(32), 123)
    sig = head.sign(key)
    assert head.verify(key.public_key(), sig)
    assert not TreeHead(6, head.root, 123).verify(key.public_key(), sig)
    assert not TreeHead(5, os.urandom(32), 123).verify(key.public_key(), sig)
    assert not TreeHead(5, head.root, 124).verify(key.public_key(), sig)
    other = ec.generate_private_key(ec.SECP256R1())
    assert not head.verify(other.public_key(), sig)
    assert not head.verify(key.public_key(), b"garbage")


def test_appending_keeps_root_and_proofs_right_at_every_size() -> None:
    leaves = _leaves(300)
    tree = MerkleTree()
    for n in range(1, 301):
        tree.append(leaves[n - 1])
        assert tree.size == n and tree.root == _mth(leaves[:n])
        for m in {0, n // 2, n - 1}:
            assert tree.proof(m) == _path(m, leaves[:n])


def _subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    """RFC 9162 §2.1.4.1, recursively."""
    n = len(leaves)
    if m == n:
        return [] if whole else [_mth(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*_subproof(m, leaves[:k], whole), _mth(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), _mth(leaves[:k])]


def test_consistency_proofs_match_the_rfc_and_verify() -> None:
    leaves = _leaves(70)
    tree = MerkleTree(leaves)
    for second in range(1, 71):
        for first in range(1, second + 1):
            proof = tree.consistency(first, second)
            assert proof == _subproof(first, leaves[:second], True), (first, second)
            r1, r2 = _mth(leaves[:first]), _mth(leaves[:second])
            assert verify_consistency(first, second, r1, r2, proof), (first, second)
            if first < second:
                assert not verify_consistency(first, second, _h(b"x"), r2, proof)
                assert not verify_consistency(first, second, r1, _h(b"x"), proof)
                if first > 1:
                    assert not verify_consistency(first - 1, second, r1, r2, proof) or \
                        _mth(leaves[:first - 1]) == r1
    assert tree.range_hash(0, 70) == tree.root
    with pytest.raises(IndexError):
        tree.consistency(0, 5)
    with pytest.raises(IndexError):
        tree.consistency(5, 71)


def test_a_rewritten_prefix_is_not_consistent() -> None:
    leaves = _leaves(40)
    old = MerkleTree(leaves[:17])
    rewritten = list(leaves)
    rewritten[3] = _h(b"\x00edited")
    new = MerkleTree(rewritten)
    assert not verify_consistency(17, 40, old.root, new.root, new.consistency(17))
    honest = MerkleTree(leaves)
    assert verify_consistency(17, 40, old.root, honest.root, honest.consistency(17))
