"""Bench: plain TLS connect vs attested connect (fetch, verify, pin) to a local grpcio server.

Run on demand:  PYTHONPATH=src python bench/attest.py [--rounds N]

!!! The quote is a FAKE (tests' layout, no SGX signature) and the RA-TLS quote
!!! verifier is a FAKE that accepts it: this measures the attested-TLS
!!! plumbing, not dcap-qvl. Swap in the real verifier once it is wired.

"plain"    = new grpcio channel pinned to the server certificate + 1 unary RPC.
"attested" = fetch the certificate over TLS (ssl, ALPN h2), verify the Teaclave
             profile (strict: report chain, RSA signature, REPORTDATA, measurements,
             status, freshness) and the RA-TLS profile (fake quote verifier),
             then the same pinned channel + 1 unary RPC.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from concurrent import futures
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "attest_tls"))

from _fakes import (
    ENCLAVE_INFO,
    FakeVerifier,
    attested_certificate,
)

from confide.attestation import (
    ReportAuthority,
    fetch_unverified_certificate,
    verify_ratls_certificate,
    verify_teaclave_certificate,
)

PIN_NAME = "attested.confide.invalid"
METHOD = "/confide.bench.Bench/Ping"


def _serve(cert_pem: bytes, key_pem: bytes) -> tuple[grpc.Server, int]:
    def ping(request: bytes, context: grpc.ServicerContext) -> bytes:
        return request

    handler = grpc.method_handlers_generic_handler(
        "confide.bench.Bench", {"Ping": grpc.unary_unary_rpc_method_handler(ping)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key_pem, cert_pem)]))
    server.start()
    return server, port


def _pinned_call(port: int, pinned_pem: bytes) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=pinned_pem)
    options = [("grpc.ssl_target_name_override", PIN_NAME), ("grpc.use_local_subchannel_pool", 1)]
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials, options=options) as channel:
        ping = channel.unary_unary(METHOD)
        if ping(b"x", timeout=5) != b"x":
            raise RuntimeError("bad echo")


def _attested_call(port: int, authority: ReportAuthority, now: dt.datetime) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    der = fetch_unverified_certificate("127.0.0.1", port)
    verify_teaclave_certificate(
        der,
        as_root_der=authority.root_der,
        enclave_info=ENCLAVE_INFO,
        service_table="teaclave_frontend_service",
        now=now,
    )
    verify_ratls_certificate(der, FakeVerifier(), now)  # FAKE quote verifier
    pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    _pinned_call(port, pem)


def _measure(fn: object, rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    now = dt.datetime.now(dt.UTC)
    authority = ReportAuthority.create(now - dt.timedelta(minutes=1))
    attested = attested_certificate(authority, now, dns_names=(PIN_NAME,))
    server, port = _serve(attested.certificate_pem(), attested.private_key_pem())
    try:
        _pinned_call(port, attested.certificate_pem())  # warm up
        plain = _measure(lambda: _pinned_call(port, attested.certificate_pem()), args.rounds)
        full = _measure(lambda: _attested_call(port, authority, now), args.rounds)
        verify_only = _measure(
            lambda: verify_teaclave_certificate(
                attested.certificate_der,
                as_root_der=authority.root_der,
                enclave_info=ENCLAVE_INFO,
                service_table="teaclave_frontend_service",
                now=now,
            ),
            args.rounds,
        )
    finally:
        server.stop(None)
    print(
        f"FAKE quote + FAKE verifier; {args.rounds} rounds; cert {len(attested.certificate_der)} B"
    )
    print(f"{'case':<34}{'p50 ms':>10}{'p95 ms':>10}")
    for name, samples in (
        ("plain TLS connect + 1 RPC", plain),
        ("attested connect + 1 RPC", full),
        ("verify_teaclave_certificate only", verify_only),
    ):
        p95 = statistics.quantiles(samples, n=20)[18]
        print(f"{name:<34}{statistics.median(samples):>10.2f}{p95:>10.2f}")


if __name__ == "__main__":
    main()
