"""Signed approvals: the canonical statement (test vectors), its checks, receipts.

The vector below is the one docs/signed-approvals.md shows: keys are Ed25519
private keys of 32 bytes 0x01 (alice), 0x02 (bob), 0x03 (carol).
"""

from __future__ import annotations

import dataclasses
import hashlib

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from confide.crypto.approvals import (
    ApprovalError,
    ApprovalGroup,
    ApprovalStatement,
    SignedInput,
    SignedOutput,
    decode_statement,
    fingerprint,
    public_key_bytes,
    sign_digest,
    verify_approvals,
)
from confide.crypto.receipts import (
    ReceiptBody,
    ReceiptEvidence,
    decode_receipt,
    receipt_report_data,
    sign_receipt,
)

VECTOR_ENCODING = bytes.fromhex(
    "636f6e666964652d617070726f76616c000001000000297461736b2d30303030303030302d303030"
    "302d303030302d303030302d3030303030303030303030310000002d66756e6374696f6e2d303030"
    "30303030302d303030302d303030302d303030302d30303030303030303030303200000020000000"
    "0000000000000000000000000000000000000000000000000000000000000000076275696c74696e"
    "000000076275696c74696e000000107b226d657373616765223a226869227d000000010000000269"
    "6e0000002a696e7075742d30303030303030302d303030302d303030302d303030302d3030303030"
    "3030303030303300000010000102030405060708090a0b0c0d0e0f0000000b6165732d67636d2d31"
    "323800000001000000036f75740000002b6f75747075742d30303030303030302d303030302d3030"
    "30302d303030302d3030303030303030303030340000000100000003626f62000000020000000561"
    "6c69636500000003626f620000000300000005616c696365000000208a88e3dd7409f195fd52db2d"
    "3cba5d72ca6709bf1d94121bf3748801b40f6f5c00000003626f62000000208139770ea87d175f56"
    "a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394000000056361726f6c00000020ed4928c6"
    "28d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d10000000100000003626f6200"
    "0000020000000300000005616c69636500000003626f62000000056361726f6c0000000100000020"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00000000713fb300")
VECTOR_DIGEST = "e0da67148f7638decf8e1db4b477195f71d26f13550980bce8b78841a67c0e97"
VECTOR_ALICE_SIGNATURE = (
    "5b9e81df7c469ac83de905e8bd2ea0f864d503c05ff9b347fe18f02ff59812ebfa043298bef56bc2"
    "afd81abf40dd14c0435aabb942f7abdd019a6e715a5bcc04")
MEASUREMENT = bytes([0xAA]) * 32


def key(i: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([i]) * 32)


KEYS = {"alice": key(1), "bob": key(2), "carol": key(3)}


def statement(**changes: object) -> ApprovalStatement:
    base = ApprovalStatement(
        task_id="task-00000000-0000-0000-0000-000000000001",
        function_id="function-00000000-0000-0000-0000-000000000002",
        code_sha256=bytes(32), executor_type="builtin", executor="builtin",
        function_arguments='{"message":"hi"}',
        inputs=(SignedInput("in", "input-00000000-0000-0000-0000-000000000003",
                            bytes(range(16)), "aes-gcm-128"),),
        outputs=(SignedOutput("out", "output-00000000-0000-0000-0000-000000000004", ("bob",)),),
        participants=("alice", "bob"),
        signers=tuple((u, public_key_bytes(k.public_key())) for u, k in KEYS.items()),
        groups=(ApprovalGroup("bob", 2, ("bob", "carol", "alice")),),
        measurements=(MEASUREMENT,), not_after=1_900_000_000)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def sign_all(st: ApprovalStatement, *users: str) -> dict[str, bytes]:
    return {u: sign_digest(KEYS[u], st.digest()) for u in users}


def test_statement_matches_the_documented_vector() -> None:
    st = statement()
    assert st.encode() == VECTOR_ENCODING
    assert st.digest().hex() == VECTOR_DIGEST
    assert hashlib.sha256(VECTOR_ENCODING).hexdigest() == VECTOR_DIGEST
    # Ed25519 is deterministic: the documented signature is reproduced exactly.
    assert sign_digest(KEYS["alice"], st.digest()).hex() == VECTOR_ALICE_SIGNATURE
    assert fingerprint(public_key_bytes(KEYS["alice"].public_key())) == \
        "3475:0f98:bd59:fcfc:946d:a45a:aabe:933b"


def test_decode_round_trips_and_lists_are_sorted_whatever_the_input_order() -> None:
    assert decode_statement(VECTOR_ENCODING) == statement()
    shuffled = statement(participants=("bob", "alice"),
                         signers=tuple(reversed(statement().signers)))
    assert shuffled.encode() == VECTOR_ENCODING


@pytest.mark.parametrize("mutate", [
    lambda b: b + b"\0",
    lambda b: b[:-1],
    lambda b: b[:17] + b"\x00\x02" + b[19:],
    lambda b: b"X" + b[1:],
])
def test_rejects_non_canonical_or_truncated_statement_bytes(mutate: object) -> None:
    with pytest.raises(ApprovalError):
        decode_statement(mutate(VECTOR_ENCODING))  # type: ignore[operator]


def test_rejects_unsorted_list_spelling() -> None:
    st = statement()
    swapped = st.encode().replace(b"\x00\x00\x00\x05alice\x00\x00\x00\x03bob",
                                  b"\x00\x00\x00\x03bob\x00\x00\x00\x05alice", 1)
    assert swapped != st.encode()
    with pytest.raises(ApprovalError, match="canonical"):
        decode_statement(swapped)


def test_all_required_signatures_verify() -> None:
    st = statement()
    verify_approvals(st, sign_all(st, "alice", "carol"), now=1_800_000_000,
                     measurement=MEASUREMENT)


def test_two_of_three_group_needs_two_members() -> None:
    st = statement()
    with pytest.raises(ApprovalError) as e:
        verify_approvals(st, sign_all(st, "alice"), now=0, measurement=MEASUREMENT)
    assert e.value.reason == "group-short"
    verify_approvals(st, sign_all(st, "alice", "bob"), now=0, measurement=MEASUREMENT)


def test_missing_participant_signature_is_refused() -> None:
    st = statement(groups=())
    with pytest.raises(ApprovalError) as e:
        verify_approvals(st, sign_all(st, "alice"), now=0, measurement=MEASUREMENT)
    assert e.value.reason == "approval-missing"


def test_expired_approvals_are_refused() -> None:
    st = statement()
    sigs = sign_all(st, "alice", "carol")
    verify_approvals(st, sigs, now=st.not_after, measurement=MEASUREMENT)
    with pytest.raises(ApprovalError) as e:
        verify_approvals(st, sigs, now=st.not_after + 1, measurement=MEASUREMENT)
    assert e.value.reason == "expired"


def test_worker_with_another_measurement_refuses() -> None:
    st = statement()
    with pytest.raises(ApprovalError) as e:
        verify_approvals(st, sign_all(st, "alice", "carol"), now=0, measurement=bytes(32))
    assert e.value.reason == "measurement-not-allowed"


@pytest.mark.parametrize("change", [
    {"task_id": "task-00000000-0000-0000-0000-000000000009"},
    {"function_id": "function-00000000-0000-0000-0000-000000000009"},
    {"code_sha256": b"\1" * 32},
    {"executor": "mesapy"},
    {"executor_type": "python"},
    {"function_arguments": '{"message":"ho"}'},
    {"inputs": (SignedInput("in", "input-00000000-0000-0000-0000-000000000003",
                            bytes(16), "aes-gcm-128"),)},
    {"inputs": (SignedInput("in", "input-00000000-0000-0000-0000-000000000009",
                            bytes(range(16)), "aes-gcm-128"),)},
    {"inputs": (SignedInput("in", "input-00000000-0000-0000-0000-000000000003",
                            bytes(range(16)), "raw"),)},
    {"outputs": (SignedOutput("out", "output-00000000-0000-0000-0000-000000000004",
                              ("mallory",)),)},
    {"participants": ("alice", "bob", "mallory")},
    {"groups": (ApprovalGroup("bob", 1, ("bob", "carol", "alice")),)},
    {"measurements": (MEASUREMENT, bytes(32))},
    {"not_after": 1_900_000_001},
])
def test_any_changed_field_breaks_every_signature(change: dict[str, object]) -> None:
    signed = statement()
    sigs = sign_all(signed, "alice", "bob", "carol")
    with pytest.raises(ApprovalError) as e:
        verify_approvals(statement(**change), sigs, now=0, measurement=MEASUREMENT)
    assert e.value.reason in ("signature-invalid", "approval-missing")


def test_substituted_signer_key_is_refused() -> None:
    st = statement()
    sigs = sign_all(st, "alice", "carol")
    mallory = key(9)
    forged = dataclasses.replace(st, signers=tuple(
        (u, public_key_bytes(mallory.public_key())) if u == "carol" else (u, k)
        for u, k in st.signers))
    sigs["carol"] = sign_digest(mallory, forged.digest())
    with pytest.raises(ApprovalError) as e:  # alice signed the statement with carol's real key
        verify_approvals(forged, sigs, now=0, measurement=MEASUREMENT)
    assert e.value.reason == "signature-invalid"


def test_signature_of_a_non_signer_is_refused() -> None:
    st = statement()
    sigs = sign_all(st, "alice", "carol")
    sigs["mallory"] = sign_digest(key(9), st.digest())
    with pytest.raises(ApprovalError) as e:
        verify_approvals(st, sigs, now=0, measurement=MEASUREMENT)
    assert e.value.reason == "signer-unknown"


def _receipt() -> bytes:
    worker = key(7)
    body = ReceiptBody(task_id="task-1", statement_digest=bytes(32), approvals=(b"\1" * 32,),
                       inputs=(("in", bytes(16)),), outputs=(("out", b"\2" * 16),),
                       return_value_sha256=hashlib.sha256(b"ok").digest(), started_ms=1,
                       ended_ms=2, outcome="ok",
                       worker_key=public_key_bytes(worker.public_key()))
    return sign_receipt(worker, body, ReceiptEvidence("sgx", b"quote", b"{}", 5))


def test_receipt_round_trips() -> None:
    receipt = decode_receipt(_receipt())
    assert receipt.body.task_id == "task-1"
    assert len(receipt_report_data(receipt.body.worker_key)) == 64


def test_receipt_with_any_byte_changed_is_refused() -> None:
    raw = _receipt()
    body = cbor2.loads(raw)["body"]
    start = raw.index(body)
    for i in range(start, start + len(body)):  # every byte the signature covers
        tampered = raw[:i] + bytes([raw[i] ^ 0x01]) + raw[i + 1:]
        with pytest.raises(ApprovalError):
            decode_receipt(tampered)
