"""What signed approvals and receipts cost on the echo task (issue 15).

One ``confide serve`` (2 workers); one client runs builtin-echo tasks end to end,
rotating three flows so all see the same machine:

* A: an unsigned task, Teaclave's flow (CreateTask, InvokeTask, WaitTask);
* B: the same task requiring a signed approval, in two calls: confide.v1 CreateTask
  with the policy (it returns the statement), then SignApproval with ``invoke``
  (the statement checked and its digest computed on the client), then WaitTask;
* B-old: the same signed task the long way: CreateTask, SetApprovalPolicy,
  GetApprovalStatement, SignApproval, InvokeTask, WaitTask.

Every task gets a receipt signed by the worker. Printed:

* create→result p50/p95 of each, and B - A, B-old - A: the whole flow;
* invoke→result p50/p95 of each (for B from the SignApproval-with-invoke call): what
  the platform adds when the task runs (staging the approval, the worker's statement
  rebuild and signature checks, the larger staged task and result);
* in-process: the worker's gate check and its receipt signature, per task.

Run: ``python bench/signed.py [--tasks 200]`` (tasks per flow).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from confide.attestation import TrustBundle
from confide.client import Client, FunctionArgument
from confide.client._attested import trust_from_bundle
from confide.crypto.approvals import public_key_bytes, sign_digest
from confide.crypto.receipts import ReceiptEvidence
from confide.execution._approval import ApprovalGate, ReceiptSigner, statement_of
from confide.staged import StagedApproval, StagedTask
from tests.platform._server import Server


def _pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def _row(name: str, values: list[float]) -> None:
    print(f"{name:<34} p50 {statistics.median(values):7.2f} ms   "
          f"p95 {_pct(values, 0.95):7.2f} ms   (n={len(values)})")


FLOWS = ("A", "B", "B-old")


def _task(client: Client, fid: str, key: Ed25519PrivateKey, measurement: bytes,
          flow: str) -> tuple[float, float]:
    t0 = time.perf_counter()
    if flow == "B":
        tid, statement = client.create_signed_task(fid, {"message": "hi"}, executor="builtin",
                                                   measurements=[measurement])
        t1 = time.perf_counter()
        client.sign_approval(tid, key, statement=statement, invoke=True,
                             allowed_measurements=[measurement])
    else:
        tid = client.create_task(fid, {"message": "hi"}, executor="builtin")
        if flow == "B-old":
            client.set_approval_policy(tid, measurements=[measurement])
            client.sign_approval(tid, key, allowed_measurements=[measurement])
        t1 = time.perf_counter()
        client.invoke_task(tid)
    task = client.wait(tid, 30)
    t2 = time.perf_counter()
    if task.return_value != b"hi":
        raise SystemExit(f"{flow} task {tid} failed: {task.status.name} {task.reason!r}")
    return (t2 - t0) * 1000, (t2 - t1) * 1000


def _in_process(n: int) -> None:
    key = Ed25519PrivateKey.generate()
    approval = StagedApproval(("alice",), (("alice", public_key_bytes(key.public_key())),), (),
                              (b"\x07" * 32,), 2**40, ())
    staged = StagedTask("task-1", "function-1", "echo", b"", "builtin", "builtin",
                        '{"message":"hi"}', (), (), approval)
    sig = sign_digest(key, statement_of(staged).digest())
    staged = StagedTask(**{**staged.__dict__, "approval": StagedApproval(
        **{**approval.__dict__, "signatures": (("alice", sig),)})})
    gate = ApprovalGate(b"\x07" * 32, time.time)
    signer = ReceiptSigner(Ed25519PrivateKey.generate(),
                           ReceiptEvidence("sgx", b"q" * 4700, b"c" * 9000, 0))
    checks, signs = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        approved = gate.check(staged)
        t1 = time.perf_counter()
        signer.sign(staged, approved, ok=True, reason="", consumed=True, return_value=b"hi",
                    tags={}, started=0.0, ended=1.0)
        t2 = time.perf_counter()
        checks.append((t1 - t0) * 1000)
        signs.append((t2 - t1) * 1000)
    _row("worker gate check (in-process)", checks)
    _row("worker receipt signature", signs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="confide-bench-signed-") as tmp:
        server = Server(Path(tmp) / "data").start()
        try:
            with server.admin() as admin:
                admin.register_user("bench", "pw-bench", "DataOwner", "bench")
                fid = admin.register_function("builtin-echo", executor_type="builtin",
                                              arguments=[FunctionArgument("message")])
            client = server.client("bench", "pw-bench")
            key = Ed25519PrivateKey.generate()
            client.register_signing_key(key)
            trust = trust_from_bundle(TrustBundle.load(server.data_dir))
            entry = trust.enclave_info.for_service("teaclave_execution_service")
            assert entry is not None
            measurement = bytes.fromhex(entry["mr_enclave"])
            for _ in range(10):  # warm up every path
                for flow in FLOWS:
                    _task(client, fid, key, measurement, flow)
            total: dict[str, list[float]] = {f: [] for f in FLOWS}
            run: dict[str, list[float]] = {f: [] for f in FLOWS}
            for i in range(args.tasks):
                for j in range(len(FLOWS)):  # each flow first, second and third in turn
                    flow = FLOWS[(i + j) % len(FLOWS)]
                    t_all, t_run = _task(client, fid, key, measurement, flow)
                    total[flow].append(t_all)
                    run[flow].append(t_run)
            last = client.list_tasks(1)[0]
            receipt_bytes = len(client.get_receipt(last))
            client.close()
        finally:
            server.stop()
    print("echo task, one client, 2 workers; A = unsigned (baseline), B = signed approval "
          "in two calls, B-old = signed the long way")
    for name, data in (("create→result", total), ("invoke→result", run)):
        for flow in FLOWS:
            _row(f"{flow} {name}", data[flow])
    for name, data in (("create→result", total), ("invoke→result", run)):
        for flow in FLOWS[1:]:
            p50 = statistics.median(data[flow]) - statistics.median(data["A"])
            p95 = _pct(data[flow], 0.95) - _pct(data["A"], 0.95)
            print(f"{flow + ' - A ' + name:<34} p50 {p50:+7.2f} ms   p95 {p95:+7.2f} ms")
    print(f"{'receipt size (sim SGX evidence)':<34} {receipt_bytes} bytes")
    _in_process(2000)


if __name__ == "__main__":
    main()
