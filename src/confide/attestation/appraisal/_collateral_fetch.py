"""Fetch DCAP collateral for real hardware (I/O; verifiers never import this).

Collateral is fetched from a PCCS/PCS URL that the operator configures
explicitly (dcap-qvl's helpers default to a third-party server; we never use a
default), and cached on disk per (PCCS URL, TEE, FMSPC, CA). It is public data,
so caching it unencrypted is fine, and it is verified on every use anyway.

Freshness: an entry is *valid* until the earliest ``nextUpdate`` of its TCB
info, QE identity, PCK CRL and root CA CRL. It is reused while it is valid for
at least ``refresh_before`` more and was fetched less than ``max_age`` ago
(revocations reach a node within ``max_age``); otherwise it is refetched. If
that fetch fails while the cached entry is still valid, the cached entry is
used and a warning logged (a PCCS outage must not stop attestation while the
collateral is still good); an expired entry is never returned.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import dcap_qvl
from cryptography import x509

from ..._atomic import write_atomic
from ...config import Limits
from .._errors import CollateralFetchError

__all__ = ["CollateralFetcher"]

Fetch = Callable[[str, bytes], str]
log = logging.getLogger("confide.attestation.collateral")


def _dcap_fetch(url: str, quote: bytes) -> str:
    try:
        return str(asyncio.run(dcap_qvl.get_collateral(url, quote)).to_json())
    except (ValueError, RuntimeError, OSError) as e:
        raise CollateralFetchError(f"fetching collateral from {url} failed: {e}") from e


def _valid_until(collateral_json: str) -> dt.datetime:
    """Earliest nextUpdate of TCB info, QE identity and both CRLs (raises on junk)."""
    doc = json.loads(collateral_json)
    ends = [dt.datetime.fromisoformat(json.loads(doc[k])["nextUpdate"].replace("Z", "+00:00"))
            for k in ("tcb_info", "qe_identity")]
    for key in ("pck_crl", "root_ca_crl"):
        crl = x509.load_der_x509_crl(bytes.fromhex(doc[key]))
        if crl.next_update_utc is None:
            raise ValueError(f"{key} has no nextUpdate")
        ends.append(crl.next_update_utc)
    return min(ends)


class CollateralFetcher:
    """Get collateral for a quote from a cache or a PCCS/PCS.

    Args:
        pccs_url: the PCCS or Intel PCS base URL (required, no default).
        cache_dir: directory for cached collateral; None disables caching.
        limits: ``max_collateral_bytes`` bounds what is accepted (fetched or cached).
        fetch: injectable ``(url, quote) -> collateral JSON`` (tests).
        max_age: refetch entries fetched longer ago than this (None: only on expiry).
        refresh_before: refetch entries that expire within this margin.
    """

    def __init__(self, pccs_url: str, cache_dir: Path | None = None,
                 limits: Limits | None = None, fetch: Fetch = _dcap_fetch, *,
                 max_age: dt.timedelta | None = dt.timedelta(hours=24),
                 refresh_before: dt.timedelta = dt.timedelta(hours=1)) -> None:
        if not pccs_url.startswith("https://"):
            raise ValueError("pccs_url must be an https:// URL")
        self._url = pccs_url
        self._cache = cache_dir
        self._limits = limits or Limits()
        self._fetch = fetch
        self._max_age = max_age
        self._refresh_before = refresh_before

    def _cache_path(self, quote: bytes) -> Path | None:
        if self._cache is None:
            return None
        try:
            q = dcap_qvl.parse_quote(quote)
            key = f"{self._url}|{q.quote_type()}-{q.fmspc()}-{q.ca()}"
        except ValueError as e:
            raise CollateralFetchError(f"cannot identify the quote's platform: {e}") from e
        return self._cache / (hashlib.sha256(key.encode()).hexdigest() + ".json")

    def _cached(self, path: Path) -> tuple[str, dt.datetime, dt.datetime] | None:
        """(collateral, valid until, fetched at) of a readable cache entry, else None."""
        try:
            if path.stat().st_size > self._limits.max_collateral_bytes:
                return None
            text = path.read_text()
            fetched = dt.datetime.fromisoformat(path.with_suffix(".fetched").read_text().strip())
            return text, _valid_until(text), fetched
        except (OSError, ValueError, KeyError, TypeError):
            return None  # missing or corrupt entry: refetch

    def _fresh(self, valid_until: dt.datetime, fetched: dt.datetime, now: dt.datetime) -> bool:
        if valid_until - now <= self._refresh_before:
            return False
        return self._max_age is None or now - fetched <= self._max_age

    def get(self, quote: bytes, *, now: dt.datetime) -> bytes:
        """Collateral (JSON bytes) for ``quote`` that is valid at ``now``.

        Raises:
            CollateralFetchError: the fetch failed and no valid cached entry exists,
                or the fetched collateral is too large.
        """
        path = self._cache_path(quote)
        cached = self._cached(path) if path is not None else None
        if cached is not None and self._fresh(cached[1], cached[2], now):
            return cached[0].encode()
        try:
            fresh = self._fetch(self._url, quote)
            if len(fresh) > self._limits.max_collateral_bytes:
                raise CollateralFetchError("fetched collateral exceeds max_collateral_bytes")
        except CollateralFetchError as e:
            if cached is not None and cached[1] > now:
                log.warning("collateral refresh from %s failed (%s); using the cached entry, "
                            "valid until %s", self._url, e, cached[1].isoformat())
                return cached[0].encode()
            raise
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, fresh.encode())
            write_atomic(path.with_suffix(".fetched"), now.isoformat().encode())
        return fresh.encode()

