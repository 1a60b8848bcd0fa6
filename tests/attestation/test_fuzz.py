"""Property tests: parsers never fail with anything but the package's own errors."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import vectors_path
from hypothesis import given, settings
from hypothesis import strategies as st

from confide.attestation import (
    AMD_ARK_MILAN_DER,
    INTEL_SGX_ROOT_CA_DER,
    AttestationError,
    parse_quote,
    parse_snp_report,
    verify_dcap_quote,
    verify_snp_report,
)

NOW = dt.datetime(2025, 6, 20, tzinfo=dt.UTC)
_V = vectors_path()
if _V is None:
    pytest.fail("test vectors not found (set CONFIDE_VECTORS)", pytrace=False)
_SGX = (_V / "dcap" / "sgx_quote").read_bytes()
_SNP = (_V / "snp" / "attestation.bin").read_bytes()


def _mutations(seed: bytes):
    return st.tuples(st.integers(0, len(seed) - 1), st.integers(0, 255),
                     st.integers(0, len(seed))).map(
        lambda t: (seed[: t[0]] + bytes([t[1]]) + seed[t[0] + 1:])[: t[2]])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=6000), _mutations(_SGX)))
def test_quote_parser_raises_only_package_errors(data: bytes) -> None:
    try:
        parse_quote(data)
    except AttestationError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(min_size=1184, max_size=1184), st.binary(max_size=2000),
                 _mutations(_SNP)))
def test_snp_parser_raises_only_package_errors(data: bytes) -> None:
    try:
        parse_snp_report(data)
    except AttestationError:
        pass


@settings(max_examples=60, deadline=None)
@given(_mutations(_SGX), st.binary(max_size=300))
def test_dcap_verifier_raises_only_package_errors(quote: bytes, collateral: bytes) -> None:
    try:
        verify_dcap_quote(quote, collateral, trusted_root_der=INTEL_SGX_ROOT_CA_DER, now=NOW)
    except AttestationError:
        pass


@settings(max_examples=60, deadline=None)
@given(_mutations(_SNP), st.binary(max_size=300))
def test_snp_verifier_raises_only_package_errors(report: bytes, chain: bytes) -> None:
    try:
        verify_snp_report(report, chain, trusted_arks_der=[AMD_ARK_MILAN_DER], now=NOW)
    except AttestationError:
        pass
