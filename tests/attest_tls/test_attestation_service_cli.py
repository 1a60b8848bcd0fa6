"""``confide attestation-service``: the standalone report service endorses a sim quote
(verified through dcap-qvl against the sim root) and refuses one under another root."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from confide.attestation import (
    ReportServiceError,
    verify_endorsement,
)
from confide.attestation.sim import SimAttester
from confide.attestation.tls._teaclave_report import UnverifiedEndorsement, parse_report
from confide.config import Limits
from confide.services.attestation_report import request_report


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_attestation_service_endorses_sim_quotes_of_its_root_only(tmp_path: Path) -> None:
    sim = SimAttester(tmp_path / "sim", "sgx")
    other = SimAttester(tmp_path / "other-sim", "sgx")
    port = _free_port()
    state = tmp_path / "as"
    proc = subprocess.Popen(
        [sys.executable, "-m", "confide", "attestation-service", "--state-dir", str(state),
         "--port", str(port), "--no-tls", "--sim-state-dir", str(tmp_path / "sim")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ})
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("attestation service did not start")
            time.sleep(0.05)
        now = dt.datetime.now(dt.UTC)
        quote = sim.evidence(b"\x05" * 64, now=now).quote
        endorsed = request_report("127.0.0.1", port, quote)
        root = x509.load_pem_x509_certificate((state / "as_root_cert.pem").read_bytes())
        verify_endorsement(UnverifiedEndorsement(endorsed.report, endorsed.signature,
                                                 endorsed.certs),
                           root.public_bytes(serialization.Encoding.DER), now, Limits())
        report = parse_report(endorsed.report, Limits())
        assert report.status == "OK"
        assert report.quote_body.raw == quote[:432]
        with pytest.raises(ReportServiceError, match="service-refused"):
            request_report("127.0.0.1", port, other.evidence(b"\x05" * 64, now=now).quote)
    finally:
        proc.terminate()
        proc.wait(10)
