"""Canonical SEV-SNP reports, per field: ReservedFieldError names the field and the offset.

The signature covers [0, 0x2A0) only; r and s are 72-byte fields holding
48-byte values and the rest of the 512-byte signature area is reserved. A
report carrying anything there would still verify, so it could smuggle data
past every check (as trailing bytes after a DCAP quote could). Real vectors
from /work/shared/vectors/snp, mutated at each area.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from conftest import SNP_TIME

from confide.attestation import (
    AMD_ARK_MILAN_DER,
    EvidenceFormatError,
    ReservedFieldError,
    parse_snp_report,
    verify_snp_report,
)

# (first byte, end) of every area that must be zero in both versions the
# parser accepts (SEV-SNP ABI, ATTESTATION_REPORT v2/v3).
COMMON = [(0x4C, 0x50), (0x1EB, 0x1EC), (0x1EF, 0x1F0), (0x1F8, 0x2A0),
          (0x2D0, 0x2E8), (0x318, 0x330), (0x330, 0x4A0)]
UNSIGNED = [(0x2D0, 0x2E8), (0x318, 0x330), (0x330, 0x4A0)]


def _set(data: bytes, offset: int, value: int = 0x01) -> bytes:
    b = bytearray(data)
    b[offset] = value
    return bytes(b)


def _verify(report: bytes, chain: bytes, now: dt.datetime = SNP_TIME) -> None:
    verify_snp_report(report, chain, trusted_arks_der=[AMD_ARK_MILAN_DER], now=now)


@pytest.fixture(scope="module")
def vlek_report(vectors: Path) -> bytes:
    return (vectors / "snp" / "vlek" / "test-vlek-report.bin").read_bytes()


def _positions(areas: list[tuple[int, int]]) -> list[int]:
    """First, middle and last byte of each area."""
    return sorted({p for lo, hi in areas for p in (lo, (lo + hi) // 2, hi - 1)})


def test_real_reports_have_every_reserved_byte_zero(snp, vlek_report) -> None:
    assert parse_snp_report(snp["report"]).version == 2
    v3 = parse_snp_report(vlek_report)
    assert v3.version == 3
    assert v3.raw[0x188:0x18B] == bytes([0x19, 0x01, 0x01])  # CPUID family/model/stepping


@pytest.mark.parametrize("offset", _positions(UNSIGNED))
def test_rejects_snp_report_with_a_byte_set_in_the_unsigned_signature_area(snp, offset) -> None:
    """The attack of issue 10: such a report used to verify unchanged."""
    mutated = _set(snp["report"], offset)
    with pytest.raises(ReservedFieldError, match="unsigned") as e:
        _verify(mutated, snp["chain"])
    assert e.value.offset == offset
    assert f"{offset:#x}" in str(e.value)


@pytest.mark.parametrize("offset", _positions([(0x188, 0x1A0), *COMMON]))
def test_rejects_v2_report_with_a_reserved_byte_set(snp, offset) -> None:
    with pytest.raises(ReservedFieldError) as e:
        parse_snp_report(_set(snp["report"], offset, 0x80))
    assert e.value.offset == offset
    assert isinstance(e.value, EvidenceFormatError)


@pytest.mark.parametrize("offset", _positions([(0x18B, 0x1A0), *COMMON]))
def test_rejects_v3_report_with_a_reserved_byte_set(vlek_report, offset) -> None:
    with pytest.raises(ReservedFieldError) as e:
        parse_snp_report(_set(vlek_report, offset))
    assert e.value.offset == offset


def test_v2_refuses_bytes_where_v3_keeps_its_cpuid_fields(snp) -> None:
    with pytest.raises(ReservedFieldError, match="after REPORTED_TCB") as e:
        parse_snp_report(_set(snp["report"], 0x188, 0x19))
    assert e.value.offset == 0x188


@pytest.mark.parametrize(("bit", "offset"), [(5, 0x48), (7, 0x48), (8, 0x49), (31, 0x4B)])
def test_rejects_report_with_a_reserved_signer_info_bit(snp, bit, offset) -> None:
    b = bytearray(snp["report"])
    flags = int.from_bytes(b[0x48:0x4C], "little") | (1 << bit)
    b[0x48:0x4C] = flags.to_bytes(4, "little")
    with pytest.raises(ReservedFieldError, match="SIGNER_INFO") as e:
        parse_snp_report(bytes(b))
    assert e.value.offset == offset


def test_every_signature_area_byte_is_either_r_s_or_refused(snp) -> None:
    """Exhaustive over [0x2A0, 0x4A0): a changed byte is a change of r or s
    (which the signature check then refuses) or is refused by the parser."""
    r_s = set(range(0x2A0, 0x2D0)) | set(range(0x2E8, 0x318))
    for offset in range(0x2A0, 0x4A0):
        mutated = _set(snp["report"], offset, snp["report"][offset] ^ 0xFF)
        if offset in r_s:
            parsed = parse_snp_report(mutated)
            assert (parsed.signature_r, parsed.signature_s) != (
                parse_snp_report(snp["report"]).signature_r,
                parse_snp_report(snp["report"]).signature_s)
        else:
            with pytest.raises(ReservedFieldError):
                parse_snp_report(mutated)
