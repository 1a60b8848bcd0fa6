"""The quote body of a Teaclave report is parsed by the same code as whole quotes
(``_quote.parse_sgx_quote_body``), so the two readings of one quote cannot disagree."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confide.attestation import ReportError, SgxQuote, parse_quote
from confide.attestation.sim import SimAttester
from confide.attestation.tls._teaclave_report import QuoteBody


def _agrees(body: QuoteBody, quote: SgxQuote) -> None:
    assert body.raw == quote.quote_body
    assert body.version == quote.header.version
    assert (body.attributes, body.mr_enclave, body.mr_signer) == (
        quote.body.attributes, quote.body.mr_enclave, quote.body.mr_signer)
    assert (body.isv_prod_id, body.isv_svn) == (quote.body.isv_prod_id, quote.body.isv_svn)
    assert body.report_data == quote.body.report_data
    assert body.debug == quote.body.debug


def test_report_body_reads_a_sim_quote_like_the_quote_parser(tmp_path: Path) -> None:
    sim = SimAttester(tmp_path / "sim", "sgx")
    for debug in (False, True):
        raw = sim.evidence(b"\x07" * 64, now=dt.datetime.now(dt.UTC), debug=debug).quote
        quote = parse_quote(raw)
        assert isinstance(quote, SgxQuote)
        _agrees(QuoteBody.parse(raw[:432]), quote)


def test_report_body_reads_intels_sample_quote_like_the_quote_parser(vectors: Path) -> None:
    raw = (vectors / "dcap" / "sgx_quote").read_bytes()
    quote = parse_quote(raw)
    assert isinstance(quote, SgxQuote)
    _agrees(QuoteBody.parse(raw[:432]), quote)


@given(st.binary(min_size=432, max_size=432))
def test_fields_sit_at_intels_offsets(raw: bytes) -> None:
    # SGX ECDSA Quote Library API, quote v3: 48-byte header, then the 384-byte report body.
    body = QuoteBody.parse(raw)
    assert body.version == int.from_bytes(raw[0:2], "little")
    assert body.attributes == raw[96:112]
    assert body.mr_enclave == raw[112:144] and body.mr_signer == raw[176:208]
    assert body.isv_prod_id == int.from_bytes(raw[304:306], "little")
    assert body.isv_svn == int.from_bytes(raw[306:308], "little")
    assert body.report_data == raw[368:432]


@pytest.mark.parametrize("size", [0, 431, 433, 1024])
def test_rejects_quote_body_of_the_wrong_size(size: int) -> None:
    with pytest.raises(ReportError) as caught:
        QuoteBody.parse(b"\x00" * size)
    assert caught.value.reason == "quote-body-size"
