"""Fetch DCAP collateral for real hardware (I/O; verifiers never import this).

Collateral is fetched from a PCCS/PCS URL that the operator configures
explicitly (dcap-qvl's helpers default to a third-party server; we never use a
default), and cached on disk per (TEE, FMSPC, CA). Cached collateral is reused
while its TCB info and QE identity are valid; it is public data, so caching it
unencrypted is fine, and it is verified on every use anyway.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import dcap_qvl

from .._atomic import write_atomic
from ..config import Limits
from ._errors import CollateralFetchError

__all__ = ["CollateralFetcher"]

Fetch = Callable[[str, bytes], str]


def _dcap_fetch(url: str, quote: bytes) -> str:
    try:
        return str(asyncio.run(dcap_qvl.get_collateral(url, quote)).to_json())
    except (ValueError, RuntimeError, OSError) as e:
        raise CollateralFetchError(f"fetching collateral from {url} failed: {e}") from e


def _valid_until(collateral_json: str) -> dt.datetime:
    doc = json.loads(collateral_json)
    ends = [json.loads(doc[k])["nextUpdate"] for k in ("tcb_info", "qe_identity")]
    return min(dt.datetime.fromisoformat(e.replace("Z", "+00:00")) for e in ends)


class CollateralFetcher:
    """Get collateral for a quote from a cache or a PCCS/PCS.

    Args:
        pccs_url: the PCCS or Intel PCS base URL (required, no default).
        cache_dir: directory for cached collateral; None disables caching.
        limits: ``max_collateral_bytes`` bounds what is accepted.
        fetch: injectable ``(url, quote) -> collateral JSON`` (tests).
    """

    def __init__(self, pccs_url: str, cache_dir: Path | None = None,
                 limits: Limits | None = None, fetch: Fetch = _dcap_fetch) -> None:
        if not pccs_url.startswith("https://"):
            raise ValueError("pccs_url must be an https:// URL")
        self._url = pccs_url
        self._cache = cache_dir
        self._limits = limits or Limits()
        self._fetch = fetch

    def _cache_path(self, quote: bytes) -> Path | None:
        if self._cache is None:
            return None
        try:
            q = dcap_qvl.parse_quote(quote)
            key = f"{q.quote_type()}-{q.fmspc()}-{q.ca()}"
        except ValueError as e:
            raise CollateralFetchError(f"cannot identify the quote's platform: {e}") from e
        return self._cache / (hashlib.sha256(key.encode()).hexdigest() + ".json")

    def get(self, quote: bytes, *, now: dt.datetime) -> bytes:
        """Collateral (JSON bytes) for ``quote`` that is valid at ``now``."""
        path = self._cache_path(quote)
        if path is not None and path.exists():
            cached = path.read_text()
            try:
                if _valid_until(cached) > now:
                    return cached.encode()
            except (ValueError, KeyError, TypeError):
                pass  # corrupt cache entry: refetch
        fresh = self._fetch(self._url, quote)
        if len(fresh) > self._limits.max_collateral_bytes:
            raise CollateralFetchError("fetched collateral exceeds max_collateral_bytes")
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, fresh.encode())
        return fresh.encode()
