"""CollateralFetcher (I/O side): explicit URL, disk cache reused while valid."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from confide.attestation import CollateralFetcher, CollateralFetchError
from confide.config import Limits


def test_requires_an_explicit_https_url() -> None:
    with pytest.raises(ValueError):
        CollateralFetcher("http://pccs.example")


def test_caches_and_reuses_until_next_update(dcap, tmp_path) -> None:
    calls = []

    def fetch(url: str, quote: bytes) -> str:
        calls.append(url)
        return dcap["sgx_collateral"].decode()

    f = CollateralFetcher("https://pccs.example", tmp_path, fetch=fetch)
    inside = dt.datetime(2025, 7, 1, tzinfo=dt.UTC)
    assert f.get(dcap["sgx_quote"], now=inside) == dcap["sgx_collateral"]
    assert f.get(dcap["sgx_quote"], now=inside) == dcap["sgx_collateral"]
    assert calls == ["https://pccs.example"]
    f.get(dcap["sgx_quote"], now=dt.datetime(2025, 8, 1, tzinfo=dt.UTC))  # expired: refetch
    assert len(calls) == 2
    assert json.loads(next(tmp_path.glob("*.json")).read_text())["tcb_info"]


def test_refuses_oversized_collateral(dcap, tmp_path) -> None:
    f = CollateralFetcher("https://pccs.example", tmp_path, Limits(max_collateral_bytes=10),
                          fetch=lambda u, q: "x" * 11)
    with pytest.raises(CollateralFetchError):
        f.get(dcap["sgx_quote"], now=dt.datetime(2025, 7, 1, tzinfo=dt.UTC))
