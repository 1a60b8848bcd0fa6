"""Parse and verify AMD SEV-SNP attestation reports (Milan/Genoa layout).

Layout and signature rules from AMD's "SEV Secure Nested Paging Firmware ABI
Specification" (ATTESTATION_REPORT, version 2/3): the signature covers bytes
[0, 0x2A0); r and s are 72-byte little-endian integers at 0x2A0 and 0x2E8.
Chain: VCEK <- ASK <- ARK, RSASSA-PSS/SHA-384 for the certificates; the ARK
must be one of the pinned roots. Pure: no clock, no network.

A report has one accepted encoding: every reserved byte and every byte of
the signature area beyond r and s must be zero (``_MUST_BE_ZERO``), as DCAP
quotes refuse trailing bytes.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ..config import Limits
from ._errors import (
    CertificateChainError,
    CollateralExpiredError,
    EvidenceFormatError,
    EvidenceTooLargeError,
    QuoteSignatureError,
    ReservedFieldError,
    TcbMismatchError,
    UntrustedRootError,
)
from ._evidence import VerifiedEvidence
from ._reader import Reader

__all__ = [
    "SNP_REPORT_SIZE",
    "SNP_TCB_NOT_EVALUATED",
    "SnpReport",
    "SnpTcb",
    "parse_snp_report",
    "verify_snp_report",
]

SNP_REPORT_SIZE = 0x4A0
# SNP has no signed TCB-status list: a policy must allow this status explicitly.
SNP_TCB_NOT_EVALUATED = "NotEvaluated"
_SIGNED_SIZE = 0x2A0
POLICY_DEBUG_BIT = 1 << 19
_AMD_OID = "1.3.6.1.4.1.3704.1"
_SPL_OIDS = {"bootloader": "3.1", "tee": "3.2", "snp": "3.3", "microcode": "3.8"}


@dataclass(frozen=True)
class SnpTcb:
    """A TCB_VERSION (Milan/Genoa byte layout)."""

    bootloader: int
    tee: int
    snp: int
    microcode: int

    @classmethod
    def from_u64(cls, raw: bytes) -> SnpTcb:
        """Decode the 8-byte little-endian TCB_VERSION."""
        return cls(bootloader=raw[0], tee=raw[1], snp=raw[6], microcode=raw[7])


@dataclass(frozen=True)
class SnpReport:
    """An SEV-SNP ATTESTATION_REPORT."""

    version: int
    guest_svn: int
    policy: int
    vmpl: int
    signature_algo: int
    platform_info: int
    flags: int
    report_data: bytes
    measurement: bytes
    host_data: bytes
    id_key_digest: bytes
    report_id: bytes
    reported_tcb: SnpTcb
    chip_id: bytes
    signature_r: int
    signature_s: int
    raw: bytes

    @property
    def debug(self) -> bool:
        """True when the guest policy allows debugging (bit 19)."""
        return bool(self.policy & POLICY_DEBUG_BIT)

    @property
    def signed_bytes(self) -> bytes:
        """The bytes the signature covers."""
        return self.raw[:_SIGNED_SIZE]


# Byte ranges [start, end) that must be zero, per report version (SEV-SNP ABI,
# ATTESTATION_REPORT; signature algorithm 1, ECDSA P-384 with SHA-384). The
# first ones are reserved but signed; the last three lie in the 512-byte
# signature area, which the signature does not cover: r and s are 72-byte
# little-endian fields holding 48-byte values, and the rest is reserved.
_UNSIGNED_MUST_BE_ZERO = (
    (0x2D0, 0x2E8, "signature r above 384 bits (unsigned)"),
    (0x318, 0x330, "signature s above 384 bits (unsigned)"),
    (0x330, SNP_REPORT_SIZE, "signature area after r and s (unsigned)"),
)
_SIGNED_MUST_BE_ZERO = (
    (0x04C, 0x050, "reserved field at 0x4C"),
    (0x1EB, 0x1EC, "reserved field after CURRENT_MAJOR"),
    (0x1EF, 0x1F0, "reserved field after COMMITTED_MAJOR"),
    (0x1F8, _SIGNED_SIZE, "reserved field after LAUNCH_TCB"),
)
_MUST_BE_ZERO: dict[int, tuple[tuple[int, int, str], ...]] = {
    2: ((0x188, 0x1A0, "reserved field after REPORTED_TCB"),
        *_SIGNED_MUST_BE_ZERO, *_UNSIGNED_MUST_BE_ZERO),
    # Version 3 puts CPUID_FAM_ID, CPUID_MOD_ID and CPUID_STEP at 0x188..0x18A.
    3: ((0x18B, 0x1A0, "reserved field after CPUID_STEP"),
        *_SIGNED_MUST_BE_ZERO, *_UNSIGNED_MUST_BE_ZERO),
}
# SIGNER_INFO (the "flags" word at 0x48): bit 0 AUTHOR_KEY_EN, bit 1
# MASK_CHIP_KEY, bits 4:2 SIGNING_KEY; bits 31:5 are reserved.
_SIGNER_INFO_OFFSET = 0x48
_SIGNER_INFO_RESERVED_BITS = 0xFFFF_FFE0


def _check_reserved_zero(raw: bytes, version: int, signer_info: int) -> None:
    """Refuse a report whose reserved or unsigned bytes are not all zero."""
    areas = _MUST_BE_ZERO.get(version)
    if areas is None:
        raise EvidenceFormatError(f"SNP report version {version}: no reserved-field layout")
    reserved_bits = signer_info & _SIGNER_INFO_RESERVED_BITS
    if reserved_bits:
        lowest = (reserved_bits & -reserved_bits).bit_length() - 1
        raise ReservedFieldError("SIGNER_INFO bits 31:5 (reserved)",
                                 _SIGNER_INFO_OFFSET + lowest // 8)
    for start, end, field in areas:
        if any(raw[start:end]):
            offset = next(i for i in range(start, end) if raw[i])
            raise ReservedFieldError(f"SNP report {field} [{start:#x}, {end:#x})", offset)


def parse_snp_report(unverified_report: bytes) -> SnpReport:
    """Parse a 1184-byte SEV-SNP report (structure only; nothing is trusted).

    Raises:
        EvidenceFormatError: wrong size, version or signature algorithm.
        ReservedFieldError: a reserved byte, or a byte of the signature area
            beyond r and s, is not zero.
    """
    if len(unverified_report) != SNP_REPORT_SIZE:
        raise EvidenceFormatError(f"SNP report must be {SNP_REPORT_SIZE} bytes, "
                                  f"got {len(unverified_report)}")
    raw = bytes(unverified_report)
    r = Reader(raw, "SNP report")
    version, guest_svn, policy = r.u32("version"), r.u32("guest_svn"), r.u64("policy")
    r.take(32, "family_id/image_id")
    vmpl, sig_algo = r.u32("vmpl"), r.u32("signature_algo")
    r.take(8, "current_tcb")
    platform_info, flags = r.u64("platform_info"), r.u32("flags")
    r.take(4, "reserved")
    report_data, measurement = r.take(64, "report_data"), r.take(48, "measurement")
    host_data, id_key_digest = r.take(32, "host_data"), r.take(48, "id_key_digest")
    r.take(48, "author_key_digest")
    report_id = r.take(32, "report_id")
    r.take(32, "report_id_ma")
    reported_tcb = SnpTcb.from_u64(r.take(8, "reported_tcb"))
    r.take(24, "reserved/cpuid")
    chip_id = r.take(64, "chip_id")
    r.take(_SIGNED_SIZE - 0x1E0, "committed/launch tcb, reserved")
    sig_r = int.from_bytes(r.take(72, "signature r"), "little")
    sig_s = int.from_bytes(r.take(72, "signature s"), "little")
    if version not in (2, 3):
        raise EvidenceFormatError(f"SNP report version {version} unsupported (2, 3 are)")
    if sig_algo != 1:
        raise EvidenceFormatError(f"SNP signature algorithm {sig_algo} unsupported (1 is)")
    _check_reserved_zero(raw, version, flags)
    return SnpReport(version, guest_svn, policy, vmpl, sig_algo, platform_info, flags,
                     report_data, measurement, host_data, id_key_digest, report_id,
                     reported_tcb, chip_id, sig_r, sig_s, raw)


def _load_chain(pem: bytes, limits: Limits) -> list[x509.Certificate]:
    if len(pem) > limits.max_collateral_bytes:
        raise EvidenceTooLargeError("SNP certificate chain exceeds max_collateral_bytes")
    if pem.count(b"-----BEGIN CERTIFICATE-----") > limits.max_cert_chain_depth:
        raise EvidenceTooLargeError(
            f"SNP chain: more than {limits.max_cert_chain_depth} certificates")
    try:
        with warnings.catch_warnings():  # AMD's VCEK has serial 0 (NOTES.md)
            warnings.simplefilter("ignore")
            certs = x509.load_pem_x509_certificates(pem)
    except ValueError as e:
        raise EvidenceFormatError("SNP chain: unparsable PEM") from e
    if len(certs) < 2:
        raise EvidenceFormatError("SNP chain must hold VCEK and ASK (ARK optional)")
    return certs


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


def _small_int_ext(cert: x509.Certificate, arc: str) -> int:
    try:
        ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(f"{_AMD_OID}.{arc}"))
    except x509.ExtensionNotFound as e:
        raise TcbMismatchError(f"VCEK lacks extension {_AMD_OID}.{arc}") from e
    raw = getattr(ext.value, "value", b"")
    if len(raw) < 3 or raw[0] != 0x02 or raw[1] != len(raw) - 2 or raw[1] > 2:
        raise EvidenceFormatError(f"VCEK extension {arc}: not a small INTEGER")
    return int.from_bytes(raw[2:], "big")


def _hwid(cert: x509.Certificate) -> bytes:
    try:
        ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(f"{_AMD_OID}.4"))
    except x509.ExtensionNotFound as e:
        raise TcbMismatchError("VCEK lacks the hwID extension") from e
    raw = bytes(getattr(ext.value, "value", b""))
    return raw[2:] if len(raw) == 66 and raw[:2] == b"\x04\x40" else raw


def verify_snp_report(
    unverified_report: bytes,
    unverified_chain_pem: bytes,
    *,
    trusted_arks_der: list[bytes],
    now: dt.datetime,
    limits: Limits | None = None,
) -> VerifiedEvidence:
    """Verify an SEV-SNP report against its VCEK chain and pinned ARKs.

    Args:
        unverified_report: the 1184-byte report.
        unverified_chain_pem: PEM ``VCEK, ASK[, ARK]``. A shipped ARK must be
            byte-identical to a pinned one; the pinned one is used either way.
        trusted_arks_der: pinned AMD root keys (DER certificates).
        now: verification time (timezone-aware).
        limits: caps.

    Raises:
        AppraisalError: a subclass naming the reason.
    """
    limits = limits or Limits()
    report = parse_snp_report(unverified_report)
    vcek, ask, *rest = _load_chain(unverified_chain_pem, limits)
    arks = [x509.load_der_x509_certificate(d) for d in trusted_arks_der]
    if rest and rest[0].public_bytes(serialization.Encoding.DER) not in trusted_arks_der:
        raise UntrustedRootError("SNP chain's ARK is not a pinned root")
    ark = next((a for a in arks if a.subject == ask.issuer), None)
    if ark is None:
        raise UntrustedRootError("no pinned ARK issued this ASK")
    _check_signed_by(ask, ark, "ASK")
    _check_signed_by(vcek, ask, "VCEK")
    for cert, what in ((ark, "ARK"), (ask, "ASK"), (vcek, "VCEK")):
        _check_validity(cert, what, now)
    for name, arc in _SPL_OIDS.items():
        want = getattr(report.reported_tcb, name)
        if _small_int_ext(vcek, arc) != want:
            raise TcbMismatchError(f"reported TCB {name} SVN {want} differs from the VCEK's")
    if report.flags & 0b10 or _hwid(vcek) != report.chip_id:
        raise TcbMismatchError("report chip_id differs from the VCEK hwID (or is masked)")
    key = vcek.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1":
        raise CertificateChainError("VCEK key is not ECDSA P-384")
    try:
        key.verify(encode_dss_signature(report.signature_r, report.signature_s),
                   report.signed_bytes, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature as e:
        raise QuoteSignatureError("SNP report signature does not verify with the VCEK") from e
    return VerifiedEvidence(
        tee="snp", tcb_status=SNP_TCB_NOT_EVALUATED, advisory_ids=(),
        measurements={"measurement": report.measurement.hex()},
        report_data=report.report_data, debug=report.debug,
        details={"chip_id": report.chip_id.hex(), "policy": f"{report.policy:#018x}"},
    )
