"""Attesters for real TEEs: Gramine (/dev/attestation) and configfs-tsm.

This is the I/O side: it reads device files and never decides trust. Paths are
injectable so tests run against fake directory trees.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path

from ...config import Limits
from .._errors import AttesterError, EvidenceFormatError
from ..evidence import Evidence, TeeType, cert_table_to_pem

__all__ = ["ConfigfsTsmAttester", "GramineAttester"]


def _check_report_data(report_data: bytes) -> None:
    if len(report_data) != 64:
        raise AttesterError(f"report_data must be 64 bytes, got {len(report_data)}")


def _read_capped(path: Path, cap: int) -> bytes:
    with open(path, "rb") as f:
        data = f.read(cap + 1)
    if len(data) > cap:
        raise AttesterError(f"{path} is larger than {cap} bytes")
    return data


class GramineAttester:
    """SGX quotes from a Gramine enclave via ``/dev/attestation``.

    Args:
        root: the attestation pseudo-filesystem (default ``/dev/attestation``).
        limits: caps (``max_quote_bytes``).
    """

    tee = "sgx"

    def __init__(self, root: Path | str = "/dev/attestation", limits: Limits | None = None):
        self._root = Path(root)
        self._limits = limits or Limits()

    def evidence(self, report_data: bytes) -> Evidence:
        """Write ``user_report_data`` and read ``quote`` (collateral not included)."""
        _check_report_data(report_data)
        try:
            (self._root / "user_report_data").write_bytes(report_data)
            quote = _read_capped(self._root / "quote", self._limits.max_quote_bytes)
        except OSError as e:
            raise AttesterError(f"gramine attestation failed: {e}") from e
        return Evidence(tee="sgx", quote=quote, produced_at=dt.datetime.now(dt.UTC))


class ConfigfsTsmAttester:
    """TDX or SEV-SNP evidence via Linux configfs-tsm (kernel >= 6.7).

    Creates ``<root>/<entry>``, writes ``inblob``, reads ``generation``, reads
    ``outblob``, ``auxblob`` and ``provider``, then re-reads ``generation``: a
    change means a concurrent writer replaced the request (retry once, else
    raise). The entry is removed afterwards. For SEV-SNP the ``auxblob``
    certificate table becomes the PEM chain ``verify_snp_report`` takes
    (``_snp_certtable``); without one the collateral is None and the verifier
    needs the chain from AMD's KDS.

    Args:
        tee: ``"tdx"`` or ``"snp"``.
        root: default ``/sys/kernel/config/tsm/report``.
        limits: caps (``max_quote_bytes``, ``max_collateral_bytes``).
    """

    _PROVIDERS = {"tdx": "tdx_guest", "snp": "sev_guest"}

    def __init__(self, tee: TeeType, root: Path | str = "/sys/kernel/config/tsm/report",
                 limits: Limits | None = None) -> None:
        if tee not in self._PROVIDERS:
            raise ValueError("configfs-tsm attester supports 'tdx' and 'snp'")
        self.tee = tee
        self._tee: TeeType = tee
        self._root = Path(root)
        self._limits = limits or Limits()

    def _once(self, entry: Path, report_data: bytes) -> Evidence | None:
        (entry / "inblob").write_bytes(report_data)
        gen_before = (entry / "generation").read_text().strip()
        outblob = _read_capped(entry / "outblob", self._limits.max_quote_bytes)
        aux_path = entry / "auxblob"
        auxblob = (_read_capped(aux_path, self._limits.max_collateral_bytes)
                   if aux_path.exists() else b"")
        provider = (entry / "provider").read_text().strip()
        gen_after = (entry / "generation").read_text().strip()
        if provider != self._PROVIDERS[self._tee]:
            raise AttesterError(f"configfs-tsm provider is {provider!r}, expected "
                                f"{self._PROVIDERS[self._tee]!r}")
        if not gen_after.isdigit() or not gen_before.isdigit():
            raise AttesterError("configfs-tsm generation is not a number")
        if gen_after != gen_before:
            return None  # someone else wrote an attribute between our write and our reads
        collateral = auxblob or None
        if self._tee == "snp" and auxblob:
            try:
                collateral = cert_table_to_pem(auxblob)
            except EvidenceFormatError as e:
                raise AttesterError(f"configfs-tsm auxblob: {e}") from e
        return Evidence(tee=self._tee, quote=outblob, collateral=collateral,
                        produced_at=dt.datetime.now(dt.UTC))

    def evidence(self, report_data: bytes) -> Evidence:
        """Produce evidence binding ``report_data`` (64 bytes)."""
        _check_report_data(report_data)
        entry = self._root / f"confide-{secrets.token_hex(8)}"
        try:
            os.mkdir(entry)
            try:
                for _ in range(2):
                    ev = self._once(entry, report_data)
                    if ev is not None:
                        return ev
            finally:
                os.rmdir(entry)
        except OSError as e:
            raise AttesterError(f"configfs-tsm attestation failed: {e}") from e
        raise AttesterError("configfs-tsm: concurrent writer changed the report twice")
