"""Evidence as it travels, and the typed result of a successful verification."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = ["TEE_TYPES", "Attester", "Evidence", "TeeType", "VerifiedEvidence"]

TeeType = Literal["sgx", "tdx", "snp"]
TEE_TYPES: tuple[TeeType, ...] = ("sgx", "tdx", "snp")


@dataclass(frozen=True)
class Evidence:
    """Attestation evidence of one node, unverified until appraised.

    Attributes:
        tee: ``"sgx"`` (quote v3), ``"tdx"`` (quote v4) or ``"snp"`` (report).
        quote: the quote / attestation report bytes.
        collateral: optional endorsements shipped with the evidence. For
            ``sgx``/``tdx``: dcap-qvl ``QuoteCollateralV3`` JSON (UTF-8). For
            ``snp``: PEM bundle ``VCEK[, ASK[, ARK]]``.
        produced_at: when the attester says it produced the evidence. It is a
            claim: it means something only if the report data commits to it
            (see ``docs/attestation.md``).
    """

    tee: TeeType
    quote: bytes
    collateral: bytes | None = None
    produced_at: dt.datetime | None = None


@dataclass(frozen=True)
class VerifiedEvidence:
    """What a verifier established about evidence whose signatures verified.

    Attributes:
        tee: TEE type.
        tcb_status: platform TCB status (DCAP names: ``UpToDate``,
            ``SWHardeningNeeded``, ...). SEV-SNP reports ``NotEvaluated``: its
            reported TCB is checked against the VCEK, but there is no signed
            status list to rate it.
        advisory_ids: vendor security advisories that apply.
        measurements: lower-case hex, keyed as in enclave_info.toml
            (``mr_enclave``/``mr_signer``; ``mrtd``/``rtmr0..3``; ``measurement``).
        report_data: the 64 bytes of REPORTDATA.
        debug: the TEE runs in debug mode (SGX ATTRIBUTES.DEBUG, TDX
            TDATTRIBUTES.DEBUG, SNP policy bit 19).
    """

    tee: TeeType
    tcb_status: str
    advisory_ids: tuple[str, ...]
    measurements: Mapping[str, str]
    report_data: bytes
    debug: bool
    details: Mapping[str, str] = field(default_factory=dict)


class Attester(Protocol):
    """Something that produces evidence binding caller-chosen report data."""

    tee: str

    def evidence(self, report_data: bytes) -> Evidence:
        """Produce evidence whose REPORTDATA is ``report_data`` (64 bytes)."""
        ...
