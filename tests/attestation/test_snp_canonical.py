"""Canonical SEV-SNP reports: every reserved byte or bit must be zero.

The 368 bytes after the signature's r and s are not signed at all, so data
hidden there would travel unnoticed; the signed reserved fields are refused
too, so a report has exactly one accepted encoding per version.
"""

from __future__ import annotations

import pytest
from _snp_sim import make_test_amd

from confide.attestation import EvidenceFormatError, parse_snp_report


def _set(data: bytes, offset: int, value: int) -> bytes:
    b = bytearray(data)
    b[offset] = value
    return bytes(b)


@pytest.mark.parametrize(("what", "offset", "value"), [
    ("flags bit 5", 0x48, 0x20),
    ("flags bit 31", 0x4B, 0x80),
    ("reserved word 0x4C", 0x4C, 1),
    ("v2 cpuid bytes", 0x188, 0x19),
    ("reserved 0x18B", 0x18B, 1),
    ("reserved 0x19F", 0x19F, 1),
    ("byte after current version", 0x1EB, 1),
    ("byte after committed version", 0x1EF, 1),
    ("v2 mitigation vector", 0x1F8, 1),
    ("reserved 0x208", 0x208, 1),
    ("reserved 0x29F", 0x29F, 1),
    ("unsigned signature tail 0x330", 0x330, 1),
    ("unsigned signature tail 0x49F", 0x49F, 1),
])
def test_rejects_real_report_with_data_in_a_reserved_field(snp, what, offset, value) -> None:
    assert parse_snp_report(snp["report"]).version == 2
    with pytest.raises(EvidenceFormatError, match="reserved"):
        parse_snp_report(_set(snp["report"], offset, value))


@pytest.mark.parametrize("signing_key", [2, 3, 4, 5, 6])
def test_rejects_reserved_signing_key_values(snp, signing_key) -> None:
    with pytest.raises(EvidenceFormatError, match="SIGNING_KEY"):
        parse_snp_report(_set(snp["report"], 0x48, signing_key << 2))


@pytest.mark.parametrize("version", [3, 4])
def test_rejects_mitigation_vectors_before_version_5(version) -> None:
    report = make_test_amd("Milan").report(version=version)
    assert parse_snp_report(report).launch_mit_vector is None
    with pytest.raises(EvidenceFormatError, match="0x1F8"):
        parse_snp_report(_set(report, 0x200, 1))


def test_version_5_reads_its_mitigation_vectors() -> None:
    r = parse_snp_report(make_test_amd("Turin").report(version=5, mit_vectors=(0x11, 0x13)))
    assert (r.launch_mit_vector, r.current_mit_vector) == (0x11, 0x13)


def test_accepts_the_real_reports_as_canonical(snp, vectors) -> None:
    parse_snp_report(snp["report"])
    parse_snp_report((vectors / "snp" / "vlek" / "test-vlek-report.bin").read_bytes())
