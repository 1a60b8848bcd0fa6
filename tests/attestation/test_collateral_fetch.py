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


INSIDE = dt.datetime(2025, 7, 1, tzinfo=dt.UTC)  # the SGX sample's collateral is valid
SGX_END = dt.datetime(2025, 7, 19, 10, 1, 18, tzinfo=dt.UTC)  # its QE identity's nextUpdate
# The TDX sample's PCK CRL (10:00:35) expires before its TCB info (10:16:03) and QE identity
TDX_PCK_CRL_END = dt.datetime(2025, 7, 19, 10, 0, 35, tzinfo=dt.UTC)


class Pccs:
    """A fake PCCS that can go down."""

    def __init__(self, collateral: bytes) -> None:
        self.collateral, self.calls, self.down = collateral.decode(), 0, False

    def __call__(self, url: str, quote: bytes) -> str:
        self.calls += 1
        if self.down:
            raise CollateralFetchError(f"{url} unreachable")
        return self.collateral


def test_refetches_after_max_age_even_while_valid(dcap, tmp_path) -> None:
    pccs = Pccs(dcap["sgx_collateral"])
    f = CollateralFetcher("https://pccs.example", tmp_path, fetch=pccs,
                          max_age=dt.timedelta(hours=6))
    f.get(dcap["sgx_quote"], now=INSIDE)
    f.get(dcap["sgx_quote"], now=INSIDE + dt.timedelta(hours=5))
    assert pccs.calls == 1
    f.get(dcap["sgx_quote"], now=INSIDE + dt.timedelta(hours=7))
    assert pccs.calls == 2


def test_validity_includes_the_crls_next_update(dcap, tmp_path) -> None:
    pccs = Pccs(dcap["tdx_collateral"])
    f = CollateralFetcher("https://pccs.example", tmp_path, fetch=pccs, max_age=None,
                          refresh_before=dt.timedelta(minutes=10))
    f.get(dcap["tdx_quote"], now=INSIDE)
    f.get(dcap["tdx_quote"], now=TDX_PCK_CRL_END - dt.timedelta(minutes=11))
    assert pccs.calls == 1
    # 5 min before the CRL's nextUpdate (TCB info and QE identity still have 20+ min)
    f.get(dcap["tdx_quote"], now=TDX_PCK_CRL_END - dt.timedelta(minutes=5))
    assert pccs.calls == 2


def test_pccs_outage_uses_a_still_valid_cache_entry(dcap, tmp_path) -> None:
    pccs = Pccs(dcap["sgx_collateral"])
    f = CollateralFetcher("https://pccs.example", tmp_path, fetch=pccs,
                          max_age=dt.timedelta(hours=1))
    f.get(dcap["sgx_quote"], now=INSIDE)
    pccs.down = True
    assert f.get(dcap["sgx_quote"], now=INSIDE + dt.timedelta(days=2)) == dcap["sgx_collateral"]
    assert pccs.calls == 2


def test_pccs_outage_never_returns_expired_collateral(dcap, tmp_path) -> None:
    pccs = Pccs(dcap["sgx_collateral"])
    f = CollateralFetcher("https://pccs.example", tmp_path, fetch=pccs)
    f.get(dcap["sgx_quote"], now=INSIDE)
    pccs.down = True
    with pytest.raises(CollateralFetchError, match="unreachable"):
        f.get(dcap["sgx_quote"], now=SGX_END + dt.timedelta(seconds=1))


def test_corrupt_or_oversized_cache_entry_is_refetched(dcap, tmp_path) -> None:
    pccs = Pccs(dcap["sgx_collateral"])
    f = CollateralFetcher("https://pccs.example", tmp_path, fetch=pccs,
                          limits=Limits(max_collateral_bytes=64 * 1024))
    f.get(dcap["sgx_quote"], now=INSIDE)
    entry = next(tmp_path.glob("*.json"))
    entry.write_text("{not json")
    assert f.get(dcap["sgx_quote"], now=INSIDE) == dcap["sgx_collateral"]
    entry.write_text(" " * (64 * 1024 + 1))
    assert f.get(dcap["sgx_quote"], now=INSIDE) == dcap["sgx_collateral"]
    assert pccs.calls == 3


def test_each_pccs_has_its_own_cache_entries(dcap, tmp_path) -> None:
    a, b = Pccs(dcap["sgx_collateral"]), Pccs(dcap["sgx_collateral"])
    CollateralFetcher("https://pccs-a.example", tmp_path, fetch=a).get(dcap["sgx_quote"],
                                                                       now=INSIDE)
    CollateralFetcher("https://pccs-b.example", tmp_path, fetch=b).get(dcap["sgx_quote"],
                                                                       now=INSIDE)
    assert (a.calls, b.calls) == (1, 1)
