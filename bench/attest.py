"""Bench: plain (pinned) TLS connect vs attested connect against a live ``confide serve``.

Run on demand:  PYTHONPATH=src python bench/attest.py [--rounds N]

Starts ``confide serve`` (sim TEE, no workers) in a temporary data dir, then,
in the same run:

"plain"    = ``Client.connect(server_cert=api-cert.pem)`` (pin the published
             certificate) + 1 unary RPC on the frontend.
"attested" = ``Client.connect_data_dir(data_dir)``: verify the auditor signature
             over enclave_info.toml, and for BOTH API endpoints fetch the
             certificate, run the strict Teaclave checks (report chain to the AS
             root, RSA signature, REPORTDATA, MRENCLAVE/MRSIGNER, status,
             freshness, debug) and the RA-TLS appraisal (the sim SGX quote through
             dcap-qvl with the collateral from the certificate, AppraisalPolicy
             with the sim root via UnsafeTrustSimRoot), then pin + the same RPC.

The sim root is trusted here on purpose (UnsafeTrustSimRoot); its per-use
warnings are silenced for the measurement.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import grpc
from _speed import speed_line  # bench/ is on sys.path when run as a script

from confide.attestation import (
    AppraisalPolicy,
    TrustBundle,
    UnsafeTrustSimRoot,
    fetch_unverified_certificate,
    verify_enclave_info,
    verify_ratls_with_policy,
    verify_teaclave_certificate,
)
from confide.client import Client
from confide.rpc._gen import confide_v1_pb2 as v1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], dict[str, int]]:
    ports = {name: _free_port() for name in ("authentication", "frontend", "scheduler", "keys")}
    args = [sys.executable, "-m", "confide", "serve", "--data-dir", str(data_dir),
            "--authentication-port", str(ports["authentication"]),
            "--frontend-port", str(ports["frontend"]),
            "--scheduler-port", str(ports["scheduler"]),
            "--key-service-port", str(ports["keys"]), "--blob-port", "0", "--workers", "0"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "GRPC_VERBOSITY": "ERROR"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (data_dir / "api-cert.pem").exists():
            try:
                fetch_unverified_certificate("127.0.0.1", ports["frontend"], timeout=1)
                return proc, ports
            except OSError:
                pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("confide serve did not start")


def _one_rpc(client: Client) -> None:
    try:  # unauthenticated on purpose: the cheapest real round trip on the frontend
        client._ext.ListTasks(v1.ListTasksRequest(), timeout=5)
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.UNAUTHENTICATED:
            raise


def _measure(fn: Callable[[], object], rounds: int) -> list[float]:
    fn()  # warm up
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    logging.getLogger("confide").setLevel(logging.ERROR)  # silence per-use sim warnings
    with tempfile.TemporaryDirectory(prefix="confide-bench-") as tmp:
        data = Path(tmp) / "data"
        proc, ports = _start_server(data)
        try:
            kw = {"authentication_port": ports["authentication"],
                  "frontend_port": ports["frontend"]}

            def plain() -> None:
                with Client.connect("127.0.0.1", server_cert=data / "api-cert.pem", **kw) as c:
                    _one_rpc(c)

            def attested() -> None:
                with Client.connect_data_dir(data, "127.0.0.1", **kw) as c:
                    _one_rpc(c)

            bundle = TrustBundle.load(data)
            info = verify_enclave_info(bundle.enclave_info, bundle.signatures,
                                       bundle.auditor_keys, 1)
            assert bundle.sim_dcap_root_der is not None
            policy = AppraisalPolicy([UnsafeTrustSimRoot(bundle.sim_dcap_root_der)], info)
            der = fetch_unverified_certificate("127.0.0.1", ports["frontend"])
            now = dt.datetime.now(dt.UTC)
            results = [
                ("plain TLS connect + 1 RPC", _measure(plain, args.rounds)),
                ("attested connect (2 endpoints) + 1 RPC", _measure(attested, args.rounds)),
                ("  fetch certificate (1 endpoint)", _measure(
                    lambda: fetch_unverified_certificate("127.0.0.1", ports["frontend"]),
                    args.rounds)),
                ("  strict Teaclave check (1 endpoint)", _measure(
                    lambda: verify_teaclave_certificate(
                        der, as_root_der=bundle.as_root_der, enclave_info=info.services,
                        service_table="teaclave_frontend_service", now=now), args.rounds)),
                ("  RA-TLS via dcap-qvl (1 endpoint)", _measure(
                    lambda: verify_ratls_with_policy(
                        der, policy, service="teaclave_frontend_service", now=now),
                    args.rounds)),
                ("  enclave_info signature check", _measure(
                    lambda: verify_enclave_info(bundle.enclave_info, bundle.signatures,
                                                bundle.auditor_keys, 1), args.rounds)),
            ]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
    print(speed_line())
    print(f"live confide serve (sim SGX, real dcap-qvl verifier); {args.rounds} rounds; "
          f"certificate {len(der)} B")
    print(f"{'case':<42}{'p50 ms':>10}{'p95 ms':>10}")
    for name, samples in results:
        p95 = statistics.quantiles(samples, n=20)[18]
        print(f"{name:<42}{statistics.median(samples):>10.2f}{p95:>10.2f}")


if __name__ == "__main__":
    main()
