"""Verify AMD SEV-SNP attestation reports of Milan, Genoa and Turin, VCEK- or VLEK-signed.

Chains (RSASSA-PSS/SHA-384 certificates; AMD KDS ``cert_chain``)::

    ARK-<product> ── ASK  "SEV-<product>"      ── VCEK "SEV-VCEK"  (per chip and TCB)
                  └─ ASVK "SEV-VLEK-<product>" ── VLEK "SEV-VLEK"  (per cloud provider)

The report's SIGNING_KEY field says which key signed it; the ARK must be one
of the pinned roots, and it fixes the product line, which must equal the one
of the report's CPUID fields (report version 3+). The certified TCB (the
product's layout, FMC included on Turin) must equal REPORTED_TCB byte for byte;
a VCEK's hwID must equal CHIP_ID (Turin: its first 8 bytes, the rest zero). The
report signature is ECDSA P-384/SHA-384 over [0, 0x2A0). Pure: no clock, no
network. Layout and canonical-form rules: :mod:`._snp_report`; TCB layouts and
certificate extensions: :mod:`._snp_tcb`.
"""

from __future__ import annotations

import datetime as dt
import hmac
import warnings
from collections.abc import Collection
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

from ...config import Limits
from .._errors import (
    CertificateChainError,
    CollateralExpiredError,
    EvidenceFormatError,
    EvidenceTooLargeError,
    QuoteSignatureError,
    SigningKeyNotAllowedError,
    TcbMismatchError,
    UntrustedRootError,
)
from ..evidence import (
    SNP_PRODUCTS,
    SnpEndorsementKey,
    SnpProduct,
    SnpReport,
    SnpSigningKey,
    VerifiedEvidence,
    parse_snp_report,
    read_endorsement_key,
    tcb_layout,
)

__all__ = [
    "SNP_SIGNING_KEYS",
    "SNP_TCB_NOT_EVALUATED",
    "SnpChain",
    "verify_snp_chain",
    "verify_snp_report",
]

# SNP has no signed TCB-status list: a policy must allow this status explicitly.
SNP_TCB_NOT_EVALUATED = "NotEvaluated"
SNP_SIGNING_KEYS: tuple[SnpSigningKey, ...] = ("VCEK", "VLEK")
_LEAF_CN = {"VCEK": "SEV-VCEK", "VLEK": "SEV-VLEK"}


@dataclass(frozen=True)
class SnpChain:
    """An endorsement-key chain that verified to a pinned ARK."""

    product: SnpProduct
    kind: SnpSigningKey
    leaf: x509.Certificate
    key: SnpEndorsementKey


def _load_chain(pem: bytes, limits: Limits) -> list[x509.Certificate]:
    if len(pem) > limits.max_collateral_bytes:
        raise EvidenceTooLargeError("SNP certificate chain exceeds max_collateral_bytes")
    if pem.count(b"-----BEGIN CERTIFICATE-----") > limits.max_cert_chain_depth:
        raise EvidenceTooLargeError(
            f"SNP chain: more than {limits.max_cert_chain_depth} certificates")
    try:
        with warnings.catch_warnings():  # AMD's VCEKs have serial 0 (NOTES.md)
            warnings.simplefilter("ignore")
            certs = x509.load_pem_x509_certificates(pem)
    except ValueError as e:
        raise EvidenceFormatError("SNP chain: unparsable PEM") from e
    if len(certs) < 2:
        raise EvidenceFormatError("SNP chain must hold the VCEK/VLEK and its ASK/ASVK "
                                  "(ARK optional)")
    return certs


def _cn(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else ""
    return value if isinstance(value, str) else ""


def _check_signed_by(cert: x509.Certificate, issuer: x509.Certificate, what: str) -> None:
    pub = issuer.public_key()
    params = cert.signature_algorithm_parameters
    if not isinstance(pub, rsa.RSAPublicKey) or not isinstance(params, padding.PSS):
        raise CertificateChainError(f"{what}: AMD chain must use RSASSA-PSS")
    algo = cert.signature_hash_algorithm
    if algo is None:
        raise CertificateChainError(f"{what}: no signature hash")
    try:
        pub.verify(cert.signature, cert.tbs_certificate_bytes, params, algo)
    except (InvalidSignature, UnsupportedAlgorithm) as e:
        raise CertificateChainError(f"{what}: signature does not verify") from e
    if cert.issuer != issuer.subject:
        raise CertificateChainError(f"{what}: issuer name mismatch")


def _check_validity(cert: x509.Certificate, what: str, now: dt.datetime) -> None:
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise CollateralExpiredError(f"{what} is not valid at {now.isoformat()}")


def _ark_product(ark: x509.Certificate) -> SnpProduct:
    cn = _cn(ark)
    for product in SNP_PRODUCTS:
        if cn == f"ARK-{product}":
            return product
    raise UntrustedRootError(f"pinned ARK {cn!r} is no known SEV-SNP product's root")


def verify_snp_chain(
    unverified_chain_pem: bytes,
    *,
    trusted_arks_der: Collection[bytes],
    now: dt.datetime,
    limits: Limits | None = None,
) -> SnpChain:
    """Verify ``VCEK|VLEK, ASK|ASVK[, ARK]`` (PEM) to a pinned ARK at ``now``.

    A shipped ARK must be byte-identical to a pinned one; the pinned one is
    used either way. The ARK's product names the line; the intermediate must
    be that product's ASK (for a VCEK) or ASVK (for a VLEK).

    Raises:
        UntrustedRootError: no pinned ARK issued the intermediate, or the
            shipped ARK is not pinned.
        CertificateChainError: a signature, name or key type is wrong.
        CollateralExpiredError: a certificate is not valid at ``now``.
        TcbMismatchError / EvidenceFormatError: the leaf's AMD extensions.
    """
    limits = limits or Limits()
    leaf, intermediate, *rest = _load_chain(unverified_chain_pem, limits)
    pinned = [bytes(d) for d in trusted_arks_der]
    if rest and rest[0].public_bytes(serialization.Encoding.DER) not in pinned:
        raise UntrustedRootError("SNP chain's ARK is not a pinned root")
    arks = [x509.load_der_x509_certificate(d) for d in pinned]
    ark = next((a for a in arks if a.subject == intermediate.issuer), None)
    if ark is None:
        raise UntrustedRootError("no pinned ARK issued this ASK/ASVK")
    product = _ark_product(ark)
    _check_signed_by(intermediate, ark, "ASK/ASVK")
    _check_signed_by(leaf, intermediate, "VCEK/VLEK")
    for cert, what in ((ark, "ARK"), (intermediate, "ASK/ASVK"), (leaf, "VCEK/VLEK")):
        _check_validity(cert, what, now)
    key = read_endorsement_key(leaf, product)
    want_intermediate = f"SEV-{product}" if key.kind == "VCEK" else f"SEV-VLEK-{product}"
    if _cn(intermediate) != want_intermediate or _cn(leaf) != _LEAF_CN[key.kind]:
        raise CertificateChainError(
            f"{key.kind} chain must be {_LEAF_CN[key.kind]} <- {want_intermediate}, got "
            f"{_cn(leaf)} <- {_cn(intermediate)}")
    pub = leaf.public_key()
    if not isinstance(pub, ec.EllipticCurvePublicKey) or pub.curve.name != "secp384r1":
        raise CertificateChainError(f"{key.kind} key is not ECDSA P-384")
    return SnpChain(product=product, kind=key.kind, leaf=leaf, key=key)


def _check_product(report: SnpReport, chain: SnpChain) -> None:
    if report.product is None and chain.product == "Turin":
        raise TcbMismatchError("a version 2 report (no CPUID) cannot be Turin's")
    if report.product is not None and report.product != chain.product:
        raise TcbMismatchError(f"report CPUID says {report.product}, the chain is "
                               f"{chain.product}'s")


def _check_tcb(report: SnpReport, chain: SnpChain) -> None:
    certified = chain.key.tcb.raw
    for index, component, _ in tcb_layout(chain.product):
        got, want = report.reported_tcb.raw[index], certified[index]
        if got != want:
            raise TcbMismatchError(f"reported TCB {component} SVN {got} differs from the "
                                   f"{chain.kind}'s {want}")


def _check_chip(report: SnpReport, chain: SnpChain) -> None:
    if chain.kind == "VLEK":
        return  # a VLEK is per cloud provider, not per chip: no hwID by design
    if report.mask_chip_key:
        raise TcbMismatchError("MASK_CHIP_KEY is set, yet the report claims a VCEK signature")
    hwid = chain.key.hwid or b""
    head, tail = report.chip_id[:len(hwid)], report.chip_id[len(hwid):]
    if not hwid or not hmac.compare_digest(head, hwid) or any(tail):
        raise TcbMismatchError(
            f"report chip_id differs from the VCEK hwID ({len(hwid)} bytes on "
            f"{chain.product}{'; the host masks the chip id' if not any(report.chip_id) else ''})")


def verify_snp_report(
    unverified_report: bytes,
    unverified_chain_pem: bytes,
    *,
    trusted_arks_der: Collection[bytes],
    now: dt.datetime,
    limits: Limits | None = None,
    allowed_signing_keys: Collection[str] = ("VCEK",),
) -> VerifiedEvidence:
    """Verify an SEV-SNP report (versions 2-5) against its VCEK/VLEK chain and pinned ARKs.

    Args:
        unverified_report: the 1184-byte report.
        unverified_chain_pem: PEM ``VCEK|VLEK, ASK|ASVK[, ARK]``.
        trusted_arks_der: pinned AMD root keys (DER); each trusts its product
            line (``AMD_ARKS``). Empty: everything is refused.
        now: verification time (timezone-aware).
        limits: caps.
        allowed_signing_keys: ``"VCEK"`` and/or ``"VLEK"``; a report signed by
            another key type is refused (default: VCEK only).

    Returns:
        The verified claims; ``details`` holds ``product``, ``signing_key``,
        ``report_version``, ``reported_tcb`` (hex), ``chip_id``, ``policy``,
        ``vmpl``, ``csp_id`` (VLEK) and the mitigation vectors (version 5).

    Raises:
        AppraisalError: a subclass naming the reason.
    """
    limits = limits or Limits()
    report = parse_snp_report(unverified_report)
    kind = report.signing_key
    if kind == "NONE":
        raise QuoteSignatureError("SNP report is unsigned (SIGNING_KEY = none)")
    if kind not in allowed_signing_keys:
        allowed = ", ".join(sorted(allowed_signing_keys)) or "none"
        raise SigningKeyNotAllowedError(f"SNP report is signed by a {kind}; allowed: {allowed}")
    chain = verify_snp_chain(unverified_chain_pem, trusted_arks_der=trusted_arks_der, now=now,
                             limits=limits)
    if chain.kind != kind:
        raise CertificateChainError(f"report says {kind}, the chain certifies a {chain.kind}")
    _check_product(report, chain)
    _check_tcb(report, chain)
    _check_chip(report, chain)
    pub = chain.leaf.public_key()
    if not isinstance(pub, ec.EllipticCurvePublicKey):  # checked in verify_snp_chain
        raise CertificateChainError(f"{kind} key is not ECDSA P-384")
    try:
        pub.verify(encode_dss_signature(report.signature_r, report.signature_s),
                   report.signed_bytes, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature as e:
        raise QuoteSignatureError(f"SNP report signature does not verify with the {kind}") from e
    return VerifiedEvidence(
        tee="snp", tcb_status=SNP_TCB_NOT_EVALUATED, advisory_ids=(),
        measurements={"measurement": report.measurement.hex()},
        report_data=report.report_data, debug=report.debug, details=_details(report, chain))


def _details(report: SnpReport, chain: SnpChain) -> dict[str, str]:
    out = {"product": chain.product, "signing_key": chain.kind,
           "report_version": str(report.version), "reported_tcb": report.reported_tcb.raw.hex(),
           "chip_id": report.chip_id.hex(), "policy": f"{report.policy:#018x}",
           "vmpl": str(report.vmpl)}
    if chain.key.csp_id is not None:
        out["csp_id"] = chain.key.csp_id
    if report.launch_mit_vector is not None and report.current_mit_vector is not None:
        out["launch_mit_vector"] = f"{report.launch_mit_vector:#018x}"
        out["current_mit_vector"] = f"{report.current_mit_vector:#018x}"
    return out
