"""Appraisal policy: the one place that decides whether evidence is accepted.

Pure: evidence, collateral and ``now`` in; an :class:`AppraisalResult` out or
an :class:`AppraisalError` subclass naming the reason. Nothing is trusted by
default: a policy without roots or without measurements refuses everything,
and the sim root is trusted only through :class:`UnsafeTrustSimRoot`, which
logs a warning every time it is used.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ...config import Limits
from .._errors import (
    DebugNotAllowedError,
    EmptyPolicyError,
    EvidenceFormatError,
    EvidenceTooOldError,
    MeasurementNotAcceptedError,
    ReportDataMismatchError,
    TcbStatusNotAllowedError,
    TeeTypeMismatchError,
    UntrustedRootError,
)
from ..evidence import Evidence, SgxQuote, VerifiedEvidence, parse_quote
from ._dcap import TDX_MEASUREMENT_KEYS, quote_root_der, verify_dcap_quote
from ._enclave_info import EnclaveInfo, service_table
from ._snp import verify_snp_report

__all__ = ["SIM_WARNING", "AppraisalPolicy", "AppraisalResult", "UnsafeTrustSimRoot"]

log = logging.getLogger("confide.attestation.policy")
#: What every use of sim evidence logs: by the sim attester when it produces it,
#: by :class:`UnsafeTrustSimRoot` when a policy trusts it.
SIM_WARNING = "sim TEE: no protection against the operator"
_REQUIRED = {"sgx": ("mr_enclave", "mr_signer"), "tdx": ("mrtd",), "snp": ("measurement",)}
_OPTIONAL = {"sgx": (), "tdx": TDX_MEASUREMENT_KEYS[1:], "snp": ()}
_CLOCK_SKEW = dt.timedelta(minutes=5)


class UnsafeTrustSimRoot:
    """Trust a ``sim`` root. UNSAFE: sim evidence gives no protection at all.

    Args:
        certificate_der: the sim root (``SimAttester.root_certificate_der``).
    """

    def __init__(self, certificate_der: bytes) -> None:
        self.certificate_der = bytes(certificate_der)
        log.warning("UnsafeTrustSimRoot configured: %s", SIM_WARNING)

    def use(self) -> bytes:
        """Return the root, logging a warning (called on every appraisal)."""
        log.warning("appraising with UnsafeTrustSimRoot: %s", SIM_WARNING)
        return self.certificate_der


@dataclass(frozen=True)
class AppraisalResult:
    """Evidence that passed appraisal, and what it established."""

    tee: str
    service: str
    tcb_status: str
    advisory_ids: tuple[str, ...]
    measurements: Mapping[str, str]
    report_data: bytes
    debug: bool
    sim: bool


@dataclass(frozen=True)
class AppraisalPolicy:
    """What evidence a verifier accepts.

    Attributes:
        trusted_roots: vendor roots (DER: Intel SGX root, AMD ARKs) and/or
            :class:`UnsafeTrustSimRoot` objects. Empty: everything is refused.
        accepted_measurements: verified enclave_info. Empty: everything is refused.
        allowed_tcb_statuses: DCAP TCB statuses accepted (SNP: ``NotEvaluated``
            must be listed explicitly to accept SNP evidence).
        allow_debug: accept debug enclaves/TDs/guests (never in production).
        max_evidence_age: oldest acceptable ``Evidence.produced_at``; None
            disables the check. Meaningful only when report data binds the time.
        snp_signing_keys: SEV-SNP endorsement-key types accepted (``"VCEK"``,
            ``"VLEK"``). Which SNP product lines are trusted is which AMD ARKs
            (``AMD_ARKS``) are in ``trusted_roots``. Default: VCEK only, so
            VLEK-signed (cloud) reports need an explicit opt-in.
        limits: caps on untrusted sizes.
    """

    trusted_roots: Sequence[bytes | UnsafeTrustSimRoot]
    accepted_measurements: EnclaveInfo
    allowed_tcb_statuses: frozenset[str] = frozenset({"UpToDate", "SWHardeningNeeded"})
    allow_debug: bool = False
    max_evidence_age: dt.timedelta | None = dt.timedelta(hours=1)
    snp_signing_keys: frozenset[str] = frozenset({"VCEK"})
    limits: Limits = field(default_factory=Limits)

    def _dcap_root(self, quote_root: bytes) -> tuple[bytes, bool]:
        for root in self.trusted_roots:
            if isinstance(root, UnsafeTrustSimRoot):
                if hmac.compare_digest(root.certificate_der, quote_root):
                    return root.use(), True
            elif hmac.compare_digest(bytes(root), quote_root):
                return bytes(root), False
        raise UntrustedRootError("the quote's PCK chain ends at a root this policy does not trust")

    def _verify(self, evidence: Evidence, collateral: bytes,
                now: dt.datetime) -> tuple[VerifiedEvidence, bool]:
        if evidence.tee == "snp":
            arks = [bytes(r) for r in self.trusted_roots if not isinstance(r, UnsafeTrustSimRoot)]
            return verify_snp_report(evidence.quote, collateral, trusted_arks_der=arks, now=now,
                                     limits=self.limits,
                                     allowed_signing_keys=self.snp_signing_keys), False
        if evidence.tee not in ("sgx", "tdx"):
            raise EvidenceFormatError(f"unknown TEE type {evidence.tee!r}")
        unverified = parse_quote(evidence.quote, self.limits)
        actual = "sgx" if isinstance(unverified, SgxQuote) else "tdx"
        if actual != evidence.tee:
            raise TeeTypeMismatchError(f"evidence says {evidence.tee!r}, quote is {actual!r}")
        if unverified.body.debug and not self.allow_debug:
            raise DebugNotAllowedError(f"{actual} quote has the DEBUG attribute set")
        root, sim = self._dcap_root(quote_root_der(unverified, self.limits))
        return verify_dcap_quote(evidence.quote, collateral, trusted_root_der=root, now=now,
                                 limits=self.limits), sim

    def _check_measurements(self, verified: VerifiedEvidence, service: str) -> None:
        entry = self.accepted_measurements.for_service(service)
        if entry is None:
            raise MeasurementNotAcceptedError(f"enclave_info has no [{service_table(service)}]")
        for key in _REQUIRED[verified.tee]:
            if key not in entry:
                raise MeasurementNotAcceptedError(
                    f"[{service_table(service)}] lists no {key} for {verified.tee}")
        for key in _REQUIRED[verified.tee] + _OPTIONAL[verified.tee]:
            if key not in entry:
                continue
            if key not in verified.measurements:  # e.g. mr_servicetd of a TD report 1.0
                raise MeasurementNotAcceptedError(
                    f"[{service_table(service)}] lists {key}, which this {verified.tee} "
                    "evidence does not carry")
            if entry[key] != verified.measurements[key]:
                raise MeasurementNotAcceptedError(
                    f"{key} {verified.measurements[key]} is not the one listed for "
                    f"[{service_table(service)}]")

    def appraise(
        self,
        evidence: Evidence,
        collateral: bytes | None = None,
        *,
        expected_report_data: bytes,
        service: str,
        now: dt.datetime,
    ) -> AppraisalResult:
        """Verify ``evidence`` and apply this policy.

        Args:
            evidence: the evidence to appraise (unverified).
            collateral: endorsements; defaults to ``evidence.collateral``.
            expected_report_data: the 64 bytes the report data must equal.
            service: the service the peer claims to be (``"frontend"`` or
                ``"teaclave_frontend_service"``).
            now: appraisal time (timezone-aware).

        Raises:
            AppraisalError: a subclass naming the first reason for refusal.
        """
        if not self.trusted_roots:
            raise EmptyPolicyError("policy trusts no root: refusing all evidence")
        if not self.accepted_measurements.services:
            raise EmptyPolicyError("policy accepts no measurement: refusing all evidence")
        if len(expected_report_data) != 64:
            raise ValueError("expected_report_data must be 64 bytes")
        collateral = collateral if collateral is not None else evidence.collateral
        if collateral is None:
            raise EvidenceFormatError("no collateral supplied with or for the evidence")
        verified, sim = self._verify(evidence, collateral, now)
        if not hmac.compare_digest(verified.report_data, expected_report_data):
            raise ReportDataMismatchError("report data does not bind the expected value")
        if verified.debug and not self.allow_debug:
            raise DebugNotAllowedError(f"{verified.tee} evidence is from a debug TEE")
        self._check_measurements(verified, service)
        if verified.tcb_status not in self.allowed_tcb_statuses:
            raise TcbStatusNotAllowedError(
                f"TCB status {verified.tcb_status} (advisories "
                f"{', '.join(verified.advisory_ids) or 'none'}) is not allowed")
        self._check_age(evidence, now)
        return AppraisalResult(
            tee=verified.tee, service=service_table(service), tcb_status=verified.tcb_status,
            advisory_ids=verified.advisory_ids, measurements=dict(verified.measurements),
            report_data=verified.report_data, debug=verified.debug, sim=sim)

    def _check_age(self, evidence: Evidence, now: dt.datetime) -> None:
        if self.max_evidence_age is None:
            return
        if evidence.produced_at is None:
            raise EvidenceTooOldError("evidence carries no production time and a max age is set")
        if evidence.produced_at > now + _CLOCK_SKEW:
            raise EvidenceTooOldError("evidence claims to be produced in the future")
        if now - evidence.produced_at > self.max_evidence_age:
            raise EvidenceTooOldError(
                f"evidence is {now - evidence.produced_at} old; max is {self.max_evidence_age}")
