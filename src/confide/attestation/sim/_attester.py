"""The ``sim`` attester: real quote formats, a local root, NO protection.

SIM ONLY. Evidence from this attester is signed by keys on the operator's
disk; anyone with access to ``state_dir`` can forge it. It exists so that
development runs the same verification path as hardware. Every use logs a
loud warning.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from ..appraisal import SIM_WARNING, TDX_MEASUREMENT_KEYS
from ..evidence import Evidence, TeeType
from ..measurement import package_measurement
from ._pki import SimPki
from ._quote import TDX_QUOTE_FORMATS, build_quote, qe_identity

__all__ = ["SIM_MEASURE_ROOT_ENV", "SimAttester", "node_sim_attester"]

log = logging.getLogger("confide.attestation.sim")


class SimAttester:
    """Produce sim SGX v3 or TDX v4/v5 quotes with matching collateral.

    Args:
        state_dir: where the sim hierarchy is generated once and persisted
            (private keys, mode 0600; they are sim-only).
        tee: ``"sgx"`` or ``"tdx"``.
        package_root: directory to measure; defaults to installed ``confide``.
        quote_version: TDX only: 4 (default; TD report 1.0) or 5 (TD report
            1.5 by default, as current TDX modules produce).
        td_report: TDX v5 only: ``"1.5"`` (default) or ``"1.0"``.
    """

    def __init__(self, state_dir: Path | str, tee: str = "sgx",
                 package_root: Path | None = None, *, quote_version: int | None = None,
                 td_report: str | None = None) -> None:
        if tee not in ("sgx", "tdx"):
            raise ValueError(f"sim tee must be 'sgx' or 'tdx', not {tee!r}")
        self.quote_version = quote_version or (3 if tee == "sgx" else 4)
        self.td_report = td_report or ("1.5" if self.quote_version == 5 else "1.0")
        if tee == "sgx" and (self.quote_version, td_report) != (3, None):
            raise ValueError("sim SGX quotes are version 3 (dcap-qvl refuses SGX v4)")
        if tee == "tdx" and (self.quote_version, self.td_report) not in TDX_QUOTE_FORMATS:
            raise ValueError(f"sim TDX quote formats are {TDX_QUOTE_FORMATS}")
        log.warning("%s (sim attester enabled, tee=%s, quote v%d)", SIM_WARNING, tee,
                    self.quote_version)
        self.tee = tee
        self._pki = SimPki.load_or_create(Path(state_dir))
        self._measurement = package_measurement("sha256" if tee == "sgx" else "sha384",
                                                package_root)
        signer = self._pki.keys["signer"].public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self._mr_signer = hashlib.sha256(signer).digest()

    @property
    def root_certificate_der(self) -> bytes:
        """The sim root CA (DER), to be trusted via ``UnsafeTrustSimRoot``."""
        return self._pki.certs["root"].public_bytes(serialization.Encoding.DER)

    @property
    def measurements(self) -> dict[str, str]:
        """The measurements this attester's quotes carry (enclave_info keys)."""
        if self.tee == "sgx":
            return {"mr_enclave": self._measurement.hex(), "mr_signer": self._mr_signer.hex()}
        zero = "00" * 48  # sim RTMRs, MRCONFIGID, MROWNER(CONFIG), MRSEAM, MRSERVICETD
        out = {"mrtd": self._measurement.hex()}
        out.update({k: zero for k in TDX_MEASUREMENT_KEYS[1:] if k != "mr_servicetd"})
        if self.td_report == "1.5":
            out["mr_servicetd"] = zero
        return out

    def collateral(self, now: dt.datetime | None = None) -> bytes:
        """Collateral valid from ``now`` - 1 h to ``now`` + 30 days (JSON bytes)."""
        log.warning("%s (sim collateral issued)", SIM_WARNING)
        when = now or dt.datetime.now(dt.UTC)
        return self._pki.collateral_json(self.tee, qe_identity(self._pki, self.tee),
                                         when).encode()

    def evidence(self, report_data: bytes, *, now: dt.datetime | None = None,
                 debug: bool = False) -> Evidence:
        """A sim quote binding ``report_data`` (64 bytes), with collateral.

        Args:
            report_data: exactly 64 caller-chosen bytes.
            now: production time (default: the clock, this is an API edge).
            debug: set the DEBUG attribute (only for negative tests).
        """
        log.warning("%s (sim evidence produced)", SIM_WARNING)
        when = now or dt.datetime.now(dt.UTC)
        quote = build_quote(self._pki, self.tee, measurement=self._measurement,
                            mr_signer=self._mr_signer, report_data=report_data, debug=debug,
                            quote_version=self.quote_version, td_report=self.td_report)
        tee: TeeType = "sgx" if self.tee == "sgx" else "tdx"
        return Evidence(tee=tee, quote=quote, collateral=self.collateral(when), produced_at=when)


#: Sim only: measure this directory instead of the installed package. A test hook
#: for nodes whose measurement is not listed; read only by :func:`node_sim_attester`.
SIM_MEASURE_ROOT_ENV = "CONFIDE_SIM_MEASURE_ROOT"


def node_sim_attester(state_dir: Path) -> SimAttester:
    """A platform node's sim SGX attester (honours ``CONFIDE_SIM_MEASURE_ROOT``, loudly)."""
    override = os.environ.get(SIM_MEASURE_ROOT_ENV)
    if override:
        log.warning("%s: measuring %s instead of the installed code (%s is set)", SIM_WARNING,
                    override, SIM_MEASURE_ROOT_ENV)
        return SimAttester(state_dir, "sgx", package_root=Path(override))
    return SimAttester(state_dir, "sgx")
