"""Signed approvals and receipts in the SDK (docs/signed-approvals.md).

The private key never leaves the caller: :meth:`SignedApprovalsMixin.sign_approval`
fetches the statement, decodes and checks it on this side (it is this task, it
names *my* key, its expiry is ahead, its measurements are ones I allow), and
only then signs its digest.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..attestation import AppraisalPolicy, AttestationError, Evidence
from ..crypto.approvals import (
    ApprovalError,
    ApprovalStatement,
    decode_statement,
    public_key_bytes,
    sign_digest,
)
from ..crypto.receipts import Receipt, decode_receipt, receipt_report_data
from ..rpc._gen import confide_v1_pb2 as v1
from ..rpc._gen import confide_v1_pb2_grpc as v1_grpc
from ..rpc._gen import teaclave_frontend_service_pb2 as pb
from ._attested import TrustInputs
from ._errors import ClientError

__all__ = ["ReceiptError", "SignedApprovalsMixin", "SigningKeyInfo", "verify_receipt"]

T = TypeVar("T")
#: The enclave_info table whose measurement a receipt's worker must have.
EXECUTION_TABLE = "teaclave_execution_service"
_CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class SigningKeyInfo:
    user_id: str
    public_key: bytes
    fingerprint: str
    registered_at: int


class ReceiptError(ClientError):
    """A receipt was refused; ``reason`` names the failed check."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__("RECEIPT_INVALID", message)
        self.reason = reason


def _decoded(unverified_statement: bytes) -> ApprovalStatement:
    """The server's statement bytes, decoded (canonical form only: not yet checked)."""
    try:
        return decode_statement(unverified_statement)
    except ApprovalError as e:
        raise ClientError("STATEMENT_INVALID", f"the server's statement: {e}") from e


def _key_info(k: v1.SigningKeyInfo) -> SigningKeyInfo:
    return SigningKeyInfo(k.user_id, bytes(k.public_key), k.fingerprint, int(k.registered_at))



def create_task_request(function_id: str, arguments: Mapping[str, Any], *, executor: str,
                        inputs_ownership: Mapping[str, Sequence[str]] | None = None,
                        outputs_ownership: Mapping[str, Sequence[str]] | None = None,
                        ) -> pb.CreateTaskRequest:
    """Teaclave's CreateTask request (also the task part of confide.v1's)."""
    return pb.CreateTaskRequest(
        function_id=function_id, function_arguments=json.dumps(dict(arguments)),
        executor=executor,
        inputs_ownership=[pb.OwnerList(data_name=n, uids=list(u))
                          for n, u in (inputs_ownership or {}).items()],
        outputs_ownership=[pb.OwnerList(data_name=n, uids=list(u))
                           for n, u in (outputs_ownership or {}).items()])

class SignedApprovalsMixin:
    """Methods :class:`confide.client.Client` gets for signed approvals."""

    _ext: v1_grpc.ConfideFrontendStub
    user_id: str | None

    def _call(self, method: Callable[..., T], request: Any, *, auth: bool = True,
              timeout: float | None = None) -> T:
        raise NotImplementedError  # Client's

    def register_signing_key(self, key: Ed25519PrivateKey | bytes) -> SigningKeyInfo:
        """Register (or replace) my public key (a key, or its raw public half): only the
        public half is sent."""
        public = key if isinstance(key, bytes) else public_key_bytes(key.public_key())
        return _key_info(self._call(self._ext.RegisterSigningKey,
                                    v1.RegisterSigningKeyRequest(public_key=public)))

    def signing_keys(self, task_id: str = "") -> list[SigningKeyInfo]:
        """My key (no task), or the keys of a task's signers, with fingerprints."""
        r = self._call(self._ext.GetSigningKeys, v1.GetSigningKeysRequest(task_id=task_id))
        return [_key_info(k) for k in r.keys]

    def set_approval_policy(self, task_id: str, *, measurements: Sequence[bytes],
                            groups: Sequence[tuple[str, int, Sequence[str]]] = (),
                            not_after: int = 0) -> None:
        """Require signed approvals of a task I created (before anyone approves)."""
        self._call(self._ext.SetApprovalPolicy, v1.SetApprovalPolicyRequest(
            task_id=task_id, measurements=list(measurements), not_after=not_after,
            groups=[v1.ApprovalGroup(name=n, k=k, members=list(m)) for n, k, m in groups]))

    def set_function_approval_policy(self, function_id: str, require_signed: bool) -> None:
        self._call(self._ext.SetFunctionApprovalPolicy, v1.SetFunctionApprovalPolicyRequest(
            function_id=function_id, require_signed=require_signed))

    def create_signed_task(
            self, function_id: str, arguments: Mapping[str, Any], *, executor: str,
            measurements: Sequence[bytes],
            inputs_ownership: Mapping[str, Sequence[str]] | None = None,
            outputs_ownership: Mapping[str, Sequence[str]] | None = None,
            groups: Sequence[tuple[str, int, Sequence[str]]] = (), not_after: int = 0,
    ) -> tuple[str, ApprovalStatement | None]:
        """Create a task that requires signed approvals, in one call (confide.v1 CreateTask).

        The policy (as :meth:`set_approval_policy` takes it) is set in the same
        transaction as the create. Returns the task id and, when it can be built
        at once (no data to assign, every signer registered a key), the statement
        to sign, decoded but *not yet checked*: pass it to :meth:`sign_approval`
        (``statement=``), which checks it here before signing. None otherwise:
        :meth:`sign_approval` fetches it later.

        Raises:
            ClientError: ``STATEMENT_INVALID`` when the server's bytes do not decode.
        """
        task = create_task_request(function_id, arguments, executor=executor,
                                   inputs_ownership=inputs_ownership,
                                   outputs_ownership=outputs_ownership)
        policy = v1.ApprovalPolicy(
            measurements=list(measurements), not_after=not_after,
            groups=[v1.ApprovalGroup(name=n, k=k, members=list(m)) for n, k, m in groups])
        r = self._call(self._ext.CreateTask,
                       v1.CreateTaskRequest(task=task, approval_policy=policy))
        return str(r.task_id), _decoded(r.statement) if r.statement else None

    def approval_statement(self, task_id: str) -> tuple[ApprovalStatement, list[str]]:
        """The statement to sign, decoded (not yet checked), and who signed it so far."""
        r = self._call(self._ext.GetApprovalStatement,
                       v1.ApprovalStatementRequest(task_id=task_id))
        return _decoded(r.statement), list(r.signed_by)

    def sign_approval(self, task_id: str, private_key: Ed25519PrivateKey, *,
                      allowed_measurements: Sequence[bytes] | None = None,
                      now: dt.datetime | None = None,
                      check: Callable[[ApprovalStatement], None] | None = None,
                      statement: ApprovalStatement | None = None,
                      invoke: bool = False) -> bytes:
        """Check the task's statement here, sign it, send the signature; returns the digest.

        ``allowed_measurements``: refuse a statement that lets any other worker
        measurement run the task (e.g. the verified enclave_info's). ``check``
        may refuse anything else by raising. ``statement``: the one
        :meth:`create_signed_task` returned (saves fetching it; checked all the
        same). ``invoke``: the task's creator also invokes the task in the
        same call; if it is not ready to run then, nothing is recorded.

        Raises:
            ClientError: ``STATEMENT_REFUSED`` naming what is wrong with the statement;
                the server's ``STALE_STATEMENT`` when the task changed since.
        """
        if statement is None:
            statement, _ = self.approval_statement(task_id)
        when = int((now or dt.datetime.now(dt.UTC)).timestamp())
        mine = public_key_bytes(private_key.public_key())
        problems = []
        if statement.task_id != task_id:
            problems.append(f"the statement is of task {statement.task_id}")
        key = statement.key_of(self.user_id or "")
        if key is None or not hmac.compare_digest(key, mine):
            problems.append("the statement does not name my signing key for me")
        if statement.not_after <= when:
            problems.append("the statement's expiry has passed")
        if allowed_measurements is not None:
            extra = set(statement.measurements) - set(allowed_measurements)
            if extra:
                problems.append("the statement allows worker measurements I do not: "
                                + ", ".join(sorted(m.hex() for m in extra)))
        if problems:
            raise ClientError("STATEMENT_REFUSED", "; ".join(problems))
        if check is not None:
            check(statement)
        digest = statement.digest()
        self._call(self._ext.SignApproval, v1.SignApprovalRequest(
            task_id=task_id, digest=digest, signature=sign_digest(private_key, digest),
            invoke=invoke))
        return digest

    def revoke_approval(self, task_id: str) -> None:
        """Withdraw my approval (signed or not) before the task runs."""
        self._call(self._ext.RevokeApproval, v1.RevokeApprovalRequest(task_id=task_id))

    def get_receipt(self, task_id: str) -> bytes:
        """The receipt the worker signed when the task ended (verify it: :func:`verify_receipt`)."""
        return bytes(self._call(self._ext.GetReceipt,
                                v1.GetReceiptRequest(task_id=task_id)).receipt)


def verify_receipt(data: bytes, trust: TrustInputs, *, now: dt.datetime,
                   approved_digest: bytes | None = None,
                   output_cmacs: Mapping[str, bytes] | None = None,
                   task_id: str | None = None,
                   chained_from: Sequence[Receipt] = ()) -> Receipt:
    """Verify a receipt offline; returns it when every check passed.

    1. the receipt parses and its signature verifies under the key it names;
    2. its evidence (appraised as of the receipt's end time, which may not be
       after ``now``) chains to a root in ``trust.ratls_roots``, carries a
       measurement the auditor-signed enclave_info lists for the execution
       service, and its report data binds that key;
    3. it is of ``task_id``, for the statement digest I approved, and lists
       the cmacs of the outputs I downloaded (each given one);
    4. fusion chains: each receipt in ``chained_from`` (verified by the caller
       first) ended ``ok`` and produced an output this task consumed (a cmac of
       its outputs is among this receipt's inputs).

    Raises:
        ReceiptError: ``reason`` names the failed check.
    """
    try:
        receipt = decode_receipt(data)
    except ApprovalError as e:
        raise ReceiptError(e.reason, str(e)) from e
    if not trust.ratls_roots:
        raise ReceiptError("trust-required", "give the trust roots to appraise the evidence")
    ev = receipt.evidence
    tee: Literal["sgx", "tdx"]
    if ev.tee == "sgx":
        tee = "sgx"
    elif ev.tee == "tdx":
        tee = "tdx"
    else:
        raise ReceiptError("evidence-invalid", f"unknown TEE type {ev.tee[:20]!r}")
    policy = AppraisalPolicy(list(trust.ratls_roots), trust.enclave_info,
                             max_evidence_age=None, limits=trust.limits)
    evidence = Evidence(tee=tee, quote=ev.quote, collateral=ev.collateral,
                        produced_at=dt.datetime.fromtimestamp(ev.produced_at, dt.UTC))
    # The evidence is appraised as of when the worker signed (its collateral valid then),
    # so a receipt stays verifiable after the collateral expires; a time ahead of ``now``
    # is refused.
    signed_at = dt.datetime.fromtimestamp(receipt.body.ended_ms / 1000, dt.UTC)
    if signed_at > now + _CLOCK_SKEW:
        raise ReceiptError("receipt-from-the-future", f"the receipt claims to end at "
                           f"{signed_at.isoformat()}, after {now.isoformat()}")
    try:
        policy.appraise(evidence, expected_report_data=receipt_report_data(
            receipt.body.worker_key), service=EXECUTION_TABLE, now=signed_at)
    except AttestationError as e:
        raise ReceiptError("evidence-refused", f"the worker's evidence: {e}") from e
    body = receipt.body
    if task_id is not None and body.task_id != task_id:
        raise ReceiptError("task-mismatch", f"the receipt is of {body.task_id}")
    if approved_digest is not None and not hmac.compare_digest(body.statement_digest,
                                                               approved_digest):
        raise ReceiptError("digest-mismatch", "the worker ran another statement than the one "
                           "approved (or no signed approvals at all)")
    produced = dict(body.outputs)
    for name, cmac in (output_cmacs or {}).items():
        if name not in produced or not hmac.compare_digest(produced[name], cmac):
            raise ReceiptError("output-mismatch", f"output {name}: the downloaded file is not "
                               "the one the worker produced")
    consumed = {cmac for _name, cmac in body.inputs}
    for earlier in chained_from:
        produced_there = {cmac for _name, cmac in earlier.body.outputs}
        if earlier.body.outcome != "ok" or not produced_there & consumed:
            raise ReceiptError("chain-broken", f"{body.task_id} consumed no output of "
                               f"{earlier.body.task_id}")
    return receipt
