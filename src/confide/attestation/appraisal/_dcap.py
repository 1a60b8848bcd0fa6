"""Verify SGX v3 / TDX v4 / TDX v5 quotes with dcap-qvl against an explicit root.

dcap-qvl 0.7.0 offers ``verify(quote, collateral, now)``, which pins Intel's
root, and ``verify_with_root_ca(quote, collateral, root_der, now)``, the
supported way to choose the root. We always call the latter and pass the root
explicitly (Intel's for hardware, the sim root for ``sim``), so the code path
is identical for both. Pure: no clock, no network.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import dcap_qvl
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ...config import Limits
from .._errors import (
    EvidenceFormatError,
    EvidenceTooLargeError,
    UntrustedRootError,
)
from ..evidence import SgxQuote, TdReport15, TdxQuote, TeeType, VerifiedEvidence, parse_quote
from ._dcap_errors import map_dcap_error

__all__ = ["TDX_MEASUREMENT_KEYS", "measurements_of", "quote_root_der", "verify_dcap_quote"]

#: The TDX measurements a verified quote reports (enclave_info keys). ``mr_servicetd``
#: exists only in TD report 1.5 (quote v5 body type 3).
TDX_MEASUREMENT_KEYS = ("mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3", "mr_config_id", "mr_owner",
                        "mr_owner_config", "mr_seam", "mr_servicetd")


def _pem_certs(pem: bytes, what: str, limits: Limits) -> list[x509.Certificate]:
    if pem.count(b"-----BEGIN CERTIFICATE-----") > limits.max_cert_chain_depth:
        raise EvidenceTooLargeError(f"{what}: more than {limits.max_cert_chain_depth} certificates")
    try:
        certs = x509.load_pem_x509_certificates(pem.rstrip(b"\x00"))
    except ValueError as e:
        raise EvidenceFormatError(f"{what}: unparsable PEM certificate chain") from e
    return certs


def quote_root_der(quote: SgxQuote | TdxQuote, limits: Limits | None = None) -> bytes:
    """DER of the last certificate of the quote's embedded PCK chain (unverified)."""
    certs = _pem_certs(quote.signature.pck_chain_pem, "PCK chain", limits or Limits())
    if not certs:
        raise EvidenceFormatError("PCK chain: no certificate")
    return certs[-1].public_bytes(serialization.Encoding.DER)


def measurements_of(quote: SgxQuote | TdxQuote) -> dict[str, str]:
    """The enclave_info-style measurements of a parsed quote (lower-case hex).

    SGX: ``mr_enclave``, ``mr_signer``. TDX: :data:`TDX_MEASUREMENT_KEYS`
    (``mr_servicetd`` only for a TD report 1.5).
    """
    if isinstance(quote, SgxQuote):
        return {"mr_enclave": quote.body.mr_enclave.hex(), "mr_signer": quote.body.mr_signer.hex()}
    td = quote.body
    out = {"mrtd": td.mr_td.hex()}
    out.update({f"rtmr{i}": m.hex() for i, m in enumerate(td.rtmrs)})
    out.update(mr_config_id=td.mr_config_id.hex(), mr_owner=td.mr_owner.hex(),
               mr_owner_config=td.mr_owner_config.hex(), mr_seam=td.mr_seam.hex())
    if isinstance(td, TdReport15):
        out["mr_servicetd"] = td.mr_servicetd.hex()
    return out


def _details(quote: SgxQuote | TdxQuote) -> dict[str, str]:
    out = {"fmspc": _fmspc(quote), "quote_version": str(quote.header.version)}
    if isinstance(quote, TdxQuote):
        td = quote.body
        out.update(td_report=td.version, tee_tcb_svn=td.tee_tcb_svn.hex(),
                   td_attributes=td.td_attributes.hex(), xfam=td.xfam.hex(),
                   seam_attributes=td.seam_attributes.hex())
        if isinstance(td, TdReport15):
            out["tee_tcb_svn2"] = td.tee_tcb_svn2.hex()
    return out


def _same_body(quote: SgxQuote | TdxQuote, verified: dict[str, Any]) -> bool:
    """dcap-qvl's view of the signed body (its report JSON) equals our parse."""
    if isinstance(quote, SgxQuote):
        theirs = verified.get("SgxEnclave") or {}
        return bool(theirs.get("report_data") == quote.body.report_data.hex()
                    and theirs.get("mr_enclave") == quote.body.mr_enclave.hex())
    td = quote.body
    if isinstance(td, TdReport15):
        td15 = verified.get("TD15") or {}
        theirs = td15.get("base") or {}
        if td15.get("mr_service_td") != td.mr_servicetd.hex():
            return False
    else:
        theirs = verified.get("TD10") or {}
    return bool(theirs.get("report_data") == td.report_data.hex()
                and theirs.get("mr_td") == td.mr_td.hex())


def _check_collateral(unverified_collateral: bytes, limits: Limits) -> Any:
    if len(unverified_collateral) > limits.max_collateral_bytes:
        raise EvidenceTooLargeError(
            f"collateral of {len(unverified_collateral)} bytes exceeds max_collateral_bytes "
            f"({limits.max_collateral_bytes})")
    try:
        doc = json.loads(unverified_collateral)
    except (ValueError, UnicodeDecodeError) as e:
        raise EvidenceFormatError("collateral: not JSON") from e
    if not isinstance(doc, dict):
        raise EvidenceFormatError("collateral: not a JSON object")
    for key in ("pck_crl_issuer_chain", "tcb_info_issuer_chain", "qe_identity_issuer_chain"):
        chain = doc.get(key)
        if not isinstance(chain, str):
            raise EvidenceFormatError(f"collateral: {key} missing")
        _pem_certs(chain.encode(), f"collateral {key}", limits)
    try:
        return dcap_qvl.QuoteCollateralV3.from_json(unverified_collateral.decode())
    except ValueError as e:
        raise EvidenceFormatError(f"collateral: {e}") from e


def verify_dcap_quote(
    unverified_quote: bytes,
    unverified_collateral: bytes,
    *,
    trusted_root_der: bytes,
    now: dt.datetime,
    limits: Limits | None = None,
) -> VerifiedEvidence:
    """Verify an SGX v3, TDX v4 or TDX v5 quote and its collateral at time ``now``.

    Checks (in dcap-qvl): PCK chain and CRLs to ``trusted_root_der``, TCB info
    and QE identity signatures and validity windows, QE report signature and
    its binding of the attestation key, the report signature, TCB status.
    Checks here: caps, structure, that the quote's chain ends at the trusted
    root, and that dcap-qvl's view of the body equals our parse.

    Args:
        unverified_quote: raw quote bytes.
        unverified_collateral: dcap-qvl ``QuoteCollateralV3`` JSON.
        trusted_root_der: the one root certificate (DER) to accept.
        now: verification time (timezone-aware).
        limits: size caps.

    Returns:
        The verified claims (``details``: ``fmspc``, ``quote_version``, and for
        TDX ``td_report``, ``tee_tcb_svn[2]``, ``td_attributes``, ``xfam``,
        ``seam_attributes``). Policy (status, debug, measurements) is NOT applied.

    Raises:
        AppraisalError: a subclass naming the reason (dcap-qvl's failures are
            mapped by ``_dcap_errors.DCAP_ERROR_MAP``).
    """
    limits = limits or Limits()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    quote = parse_quote(unverified_quote, limits)
    collateral = _check_collateral(unverified_collateral, limits)
    if quote_root_der(quote, limits) != trusted_root_der:
        raise UntrustedRootError("quote's PCK chain does not end at the trusted root")
    try:
        report = dcap_qvl.verify_with_root_ca(
            bytes(unverified_quote), collateral, trusted_root_der, int(now.timestamp()))
    except ValueError as e:
        raise map_dcap_error(e) from e
    if not _same_body(quote, json.loads(report.to_json())["report"]):
        raise EvidenceFormatError("dcap-qvl and confide parse the report body differently")
    ours = quote.body
    tee: TeeType = "sgx" if isinstance(quote, SgxQuote) else "tdx"
    return VerifiedEvidence(
        tee=tee, tcb_status=str(report.status), advisory_ids=tuple(report.advisory_ids),
        measurements=measurements_of(quote), report_data=ours.report_data, debug=ours.debug,
        details=_details(quote),
    )


def _fmspc(quote: SgxQuote | TdxQuote) -> str:
    try:
        return str(dcap_qvl.parse_quote(quote.raw).fmspc())
    except ValueError:
        return ""
