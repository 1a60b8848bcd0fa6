"""Shared fixtures: vectors, a clock, FAKE quotes and a FAKE quote verifier.

The fake quotes are NOT SGX quotes anyone signed: a 432-byte quote body laid
out like an SGX v3 quote, followed by a marker tail. The fake verifier accepts
exactly those (it checks the marker), so tests exercise attested TLS without
the real dcap-qvl path, which lives in the quote-verification helper's tests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from confide.attestation import (
    AttestationError,
    AttestedCertificate,
    EndorsedReport,
    issue_attested_certificate,
)
from confide.services.attestation_report import ReportAuthority

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
FAKE_MR_ENCLAVE = bytes(range(32))
FAKE_MR_SIGNER = bytes(range(100, 132))
FAKE_TAIL = b"\x00" * 4 + b"FAKE-QUOTE-SIGNATURE-NOT-SGX"


def make_fake_quote(
    report_data: bytes,
    *,
    mr_enclave: bytes = FAKE_MR_ENCLAVE,
    mr_signer: bytes = FAKE_MR_SIGNER,
    debug: bool = False,
) -> bytes:
    """A FAKE SGX v3 quote: real body layout (REPORTDATA at [368:432]) + a marker tail."""
    assert len(report_data) == 64
    header = (
        (3).to_bytes(2, "little")  # version 3 (ECDSA)
        + (2).to_bytes(2, "little")  # attestation key type P-256
        + bytes(4)
        + (7).to_bytes(2, "little")  # QE SVN
        + (12).to_bytes(2, "little")  # PCE SVN
        + bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")
        + bytes(20)
    )
    attributes = bytes([0x07 if debug else 0x05]) + bytes(7) + bytes([0xE7]) + bytes(7)
    report_body = (
        bytes(16)  # cpu svn
        + bytes(4)  # misc select
        + bytes(28)
        + attributes
        + mr_enclave
        + bytes(32)
        + mr_signer
        + bytes(96)
        + bytes(2)
        + bytes(2)
        + bytes(60)
        + report_data
    )
    body = header + report_body
    assert len(body) == 432
    return body + FAKE_TAIL


@dataclass(frozen=True)
class FakeVerdict:
    status: str
    advisories: Sequence[str]
    mr_enclave: bytes
    mr_signer: bytes
    report_data: bytes


class FakeQuoteRefused(AttestationError):
    """What a real verifier raises for a refused quote (an AttestationError)."""


@dataclass
class FakeVerifier:
    """A FAKE verifier: accepts only fake quotes; records calls."""

    status: str = "UpToDate"
    advisories: Sequence[str] = ()
    calls: list[tuple[bytes, dt.datetime]] = field(default_factory=list)

    def __call__(self, quote: bytes, now: dt.datetime) -> FakeVerdict:
        self.calls.append((quote, now))
        if not quote.endswith(FAKE_TAIL) or len(quote) != 432 + len(FAKE_TAIL):
            raise FakeQuoteRefused("not a fake quote")
        return FakeVerdict(
            status=self.status,
            advisories=tuple(self.advisories),
            mr_enclave=quote[112:144],
            mr_signer=quote[176:208],
            report_data=quote[368:432],
        )


ENCLAVE_INFO = {
    "teaclave_frontend_service": {
        "mr_enclave": FAKE_MR_ENCLAVE.hex(),
        "mr_signer": FAKE_MR_SIGNER.hex(),
    }
}


def attested_certificate(
    authority: ReportAuthority,
    now: dt.datetime,
    *,
    status: str = "UpToDate",
    debug: bool = False,
    mr_enclave: bytes = FAKE_MR_ENCLAVE,
    collateral: bytes | None = None,
    dns_names: Sequence[str] = (),
) -> AttestedCertificate:
    """A node certificate over a FAKE quote, endorsed by ``authority`` (fake verifier)."""
    verifier = FakeVerifier(status=status)

    def get_quote(report_data: bytes) -> bytes:
        return make_fake_quote(report_data, debug=debug, mr_enclave=mr_enclave)

    def endorse(quote: bytes) -> EndorsedReport:
        return authority.endorse(quote, verifier(quote, now), now)

    return issue_attested_certificate(
        get_quote,
        endorse,
        now,
        get_collateral=(lambda _q: collateral) if collateral is not None else None,
        dns_names=dns_names,
    )
