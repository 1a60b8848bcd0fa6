"""The worker's approval gate: it runs before anything is fetched or decrypted, it fails
closed, and the worker's receipt records what ran (or that nothing did)."""

from __future__ import annotations

import hashlib
import threading

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from confide.config import Limits
from confide.crypto.approvals import public_key_bytes, sign_digest
from confide.crypto.receipts import ReceiptEvidence, decode_receipt
from confide.execution import Stager, TaskRunner
from confide.execution._approval import ApprovalGate, ReceiptSigner, statement_of
from confide.execution.file_agent import FileAgentError
from confide.executor_registry import MESAPY
from confide.invocation import Invocation
from confide.staged import StagedApproval, StagedFile, StagedTask

MEASUREMENT = b"\x07" * 32
ALICE = Ed25519PrivateKey.generate()


class _CountingTransport:
    """A file agent that records every fetch (the gate must come first)."""

    def __init__(self) -> None:
        self.downloads: list[str] = []

    def download(self, url: str, dst: object, *, max_bytes: int) -> int:
        self.downloads.append(url)
        raise FileAgentError(url, "not reachable in this test")

    def upload(self, url: str, src: object, size: int) -> None:
        raise AssertionError("nothing to upload")


class _Never:
    name = MESAPY.executor

    def run(self, invocation: Invocation) -> str:
        raise AssertionError("the function must not run")


def _staged(arguments: str = "{}", *, sign: bool = True, not_after: int = 2**40
            ) -> StagedTask:
    approval = StagedApproval(participants=("alice",),
                              signers=(("alice", public_key_bytes(ALICE.public_key())),),
                              groups=(), measurements=(MEASUREMENT,), not_after=not_after,
                              signatures=())
    inp = StagedFile("in", "https://files.example/in", b"\x01" * 16, "aes-gcm-128",
                     b"k" * 16, b"i" * 12, file_id="input-1")
    base = StagedTask(task_id="task-1", function_id="function-1", function_name="f",
                      function_payload=b"code", executor_type="python", executor="mesapy",
                      function_arguments="{}", inputs=(inp,), outputs=(), approval=approval)
    digest = statement_of(base).digest()
    signed = StagedApproval(**{**approval.__dict__, "signatures": (
        ("alice", sign_digest(ALICE, digest)),) if sign else ()})
    return StagedTask(**{**base.__dict__, "function_arguments": arguments,
                         "approval": signed})


def _runner(transport: _CountingTransport, *, gate: bool = True,
            receipts: ReceiptSigner | None = None) -> TaskRunner:
    return TaskRunner({MESAPY.executor: _Never()}, Stager(transport, Limits()),  # type: ignore
                      Limits(), gate=ApprovalGate(MEASUREMENT, lambda: 1000.0) if gate else None,
                      receipts=receipts)


def test_changed_argument_is_refused_before_any_input_is_fetched() -> None:
    transport = _CountingTransport()
    outcome = _runner(transport).run(_staged('{"x":"1"}'), threading.Event())
    assert not outcome.ok and "signature-invalid" in outcome.reason
    assert transport.downloads == []


def test_missing_signature_is_refused_before_any_input_is_fetched() -> None:
    transport = _CountingTransport()
    outcome = _runner(transport).run(_staged(sign=False), threading.Event())
    assert not outcome.ok and "approval-missing" in outcome.reason
    assert transport.downloads == []


def test_expired_is_refused_before_any_input_is_fetched() -> None:
    transport = _CountingTransport()
    outcome = _runner(transport).run(_staged(not_after=999), threading.Event())
    assert not outcome.ok and "expired" in outcome.reason
    assert transport.downloads == []


def test_worker_without_a_gate_refuses_a_task_that_carries_approvals() -> None:
    transport = _CountingTransport()
    outcome = _runner(transport, gate=False).run(_staged(), threading.Event())
    assert not outcome.ok and "no-gate" in outcome.reason
    assert transport.downloads == []


def test_valid_approvals_let_staging_start() -> None:
    transport = _CountingTransport()
    outcome = _runner(transport).run(_staged(), threading.Event())
    assert transport.downloads == ["https://files.example/in"]  # the gate passed
    assert not outcome.ok  # the (unreachable) download failed afterwards


def test_receipt_of_a_refused_task_lists_no_consumed_input() -> None:
    signer = ReceiptSigner(Ed25519PrivateKey.generate(),
                           ReceiptEvidence("sgx", b"q", b"c", 1))
    outcome = _runner(_CountingTransport(), receipts=signer).run(_staged('{"x":"1"}'),
                                                                 threading.Event())
    body = decode_receipt(outcome.receipt).body
    assert body.task_id == "task-1" and body.inputs == () and body.statement_digest == b""
    assert body.outcome.startswith("error: approvals refused")
    assert body.return_value_sha256 == hashlib.sha256(b"").digest()
