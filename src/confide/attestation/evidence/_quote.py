"""Typed models of Intel DCAP quotes (SGX v3, TDX v4 and v5), parsed from bytes.

Layouts follow Intel's "SGX ECDSA Quote Library API" (quote v3) and "TDX DCAP
Quoting Library API" (quote v4, TD report 1.0; quote v5, whose header is
followed by a body descriptor ``u16 type, u32 size`` and a TD report 1.0
(type 2, 584 bytes) or 1.5 (type 3, 648 bytes: 1.0 plus TEE_TCB_SVN2 and
MRSERVICETD)). The signature data of v4 and v5 is the same. Only the structure
is checked here; nothing parsed by this module is trusted until
:func:`confide.attestation.verify_dcap_quote` has verified the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...config import Limits
from .._errors import EvidenceFormatError, EvidenceTooLargeError
from ._reader import Reader

__all__ = [
    "CERT_TYPE_PCK_CHAIN",
    "CERT_TYPE_QE_REPORT",
    "HEADER_SIZE",
    "SGX_QUOTE_BODY_SIZE",
    "SGX_REPORT_SIZE",
    "TDX_REPORT15_SIZE",
    "TDX_REPORT_SIZE",
    "TD_REPORT10_BODY_TYPE",
    "TD_REPORT15_BODY_TYPE",
    "TEE_TYPE_SGX",
    "TEE_TYPE_TDX",
    "QuoteHeader",
    "QuoteSignature",
    "SgxQuote",
    "SgxReportBody",
    "TdReport",
    "TdReport15",
    "TdxQuote",
    "parse_quote",
    "parse_sgx_quote_body",
    "parse_sgx_report_body",
    "unverified_report_data",
]

HEADER_SIZE = 48
SGX_REPORT_SIZE = 384
TDX_REPORT_SIZE = 584
#: Header plus SGX report body: what Teaclave's IAS-style reports call the quote body.
SGX_QUOTE_BODY_SIZE = HEADER_SIZE + SGX_REPORT_SIZE
TDX_REPORT15_SIZE = 648
TD_REPORT10_BODY_TYPE = 2  # quote v5 body descriptor types (1 = SGX, unsupported)
TD_REPORT15_BODY_TYPE = 3
TEE_TYPE_SGX = 0x00000000
TEE_TYPE_TDX = 0x00000081
ATTESTATION_KEY_ECDSA_P256 = 2
CERT_TYPE_PCK_CHAIN = 5  # PEM: PCK leaf, PCK CA, root
CERT_TYPE_QE_REPORT = 6  # QE report certification data (TDX v4)
SGX_ATTRIBUTE_DEBUG = 0x02  # ATTRIBUTES.FLAGS bit 1
TD_ATTRIBUTE_DEBUG = 0x01  # TDATTRIBUTES bit 0


@dataclass(frozen=True)
class QuoteHeader:
    """The 48-byte quote header."""

    version: int
    attestation_key_type: int
    tee_type: int
    qe_svn: int
    pce_svn: int
    qe_vendor_id: bytes
    user_data: bytes


@dataclass(frozen=True)
class SgxReportBody:
    """An SGX enclave REPORT body (384 bytes); also the QE report."""

    cpu_svn: bytes
    misc_select: int
    attributes: bytes
    mr_enclave: bytes
    mr_signer: bytes
    isv_prod_id: int
    isv_svn: int
    report_data: bytes

    @property
    def debug(self) -> bool:
        """True when ATTRIBUTES.DEBUG is set (the enclave can be inspected)."""
        return bool(self.attributes[0] & SGX_ATTRIBUTE_DEBUG)


@dataclass(frozen=True)
class TdReport:
    """A TDX TD report 1.0 body (584 bytes)."""

    tee_tcb_svn: bytes
    mr_seam: bytes
    mr_signer_seam: bytes
    seam_attributes: bytes
    td_attributes: bytes
    xfam: bytes
    mr_td: bytes
    mr_config_id: bytes
    mr_owner: bytes
    mr_owner_config: bytes
    rtmrs: tuple[bytes, bytes, bytes, bytes]
    report_data: bytes

    @property
    def debug(self) -> bool:
        """True when TDATTRIBUTES.DEBUG is set (the host can read TD state)."""
        return bool(self.td_attributes[0] & TD_ATTRIBUTE_DEBUG)

    @property
    def version(self) -> str:
        """The TD report layout: ``"1.0"``."""
        return "1.0"


@dataclass(frozen=True)
class TdReport15(TdReport):
    """A TDX TD report 1.5 body (648 bytes): TD report 1.0 plus two fields.

    Attributes:
        tee_tcb_svn2: the TCB SVN of the TDX module after a runtime update
            (TD-preserving update); dcap-qvl evaluates the TCB with it.
        mr_servicetd: the measurement of the service TDs bound to this TD
            (e.g. a migration TD); all zero when none is bound.
    """

    tee_tcb_svn2: bytes
    mr_servicetd: bytes

    @property
    def version(self) -> str:
        """The TD report layout: ``"1.5"``."""
        return "1.5"


@dataclass(frozen=True)
class QuoteSignature:
    """The ECDSA-P256 signature data that follows the report body."""

    report_signature: bytes  # r||s over header||body
    attestation_key: bytes  # raw X||Y
    qe_report: SgxReportBody
    qe_report_raw: bytes
    qe_report_signature: bytes  # r||s by the PCK key over qe_report_raw
    qe_auth_data: bytes
    pck_chain_pem: bytes  # certification data type 5


@dataclass(frozen=True)
class SgxQuote:
    """An SGX ECDSA quote, version 3."""

    header: QuoteHeader
    body: SgxReportBody
    signature: QuoteSignature
    raw: bytes

    @property
    def quote_body(self) -> bytes:
        """Header plus report body: the 432 bytes Teaclave calls the quote body."""
        return self.raw[:SGX_QUOTE_BODY_SIZE]


@dataclass(frozen=True)
class TdxQuote:
    """A TDX quote: version 4 (TD report 1.0) or 5 (TD report 1.0 or 1.5).

    ``body`` is a :class:`TdReport15` exactly when the quote carries a TD
    report 1.5; ``header.version`` tells v4 from v5.
    """

    header: QuoteHeader
    body: TdReport
    signature: QuoteSignature
    raw: bytes


def _parse_header(r: Reader) -> QuoteHeader:
    return QuoteHeader(
        version=r.u16("version"),
        attestation_key_type=r.u16("attestation_key_type"),
        tee_type=r.u32("tee_type"),
        qe_svn=r.u16("qe_svn"),
        pce_svn=r.u16("pce_svn"),
        qe_vendor_id=r.take(16, "qe_vendor_id"),
        user_data=r.take(20, "user_data"),
    )


def parse_sgx_report_body(data: bytes) -> SgxReportBody:
    """Parse a 384-byte SGX REPORT body.

    Raises:
        EvidenceFormatError: the length is wrong.
    """
    if len(data) != SGX_REPORT_SIZE:
        raise EvidenceFormatError(f"SGX report body must be {SGX_REPORT_SIZE} bytes")
    r = Reader(data, "SGX report body")
    cpu_svn = r.take(16, "cpu_svn")
    misc_select = r.u32("misc_select")
    r.take(28, "reserved1")
    attributes = r.take(16, "attributes")
    mr_enclave = r.take(32, "mr_enclave")
    r.take(32, "reserved2")
    mr_signer = r.take(32, "mr_signer")
    r.take(96, "reserved3")
    isv_prod_id = r.u16("isv_prod_id")
    isv_svn = r.u16("isv_svn")
    r.take(60, "reserved4")
    report_data = r.take(64, "report_data")
    r.end()
    return SgxReportBody(
        cpu_svn, misc_select, attributes, mr_enclave, mr_signer, isv_prod_id, isv_svn, report_data
    )


def parse_sgx_quote_body(data: bytes) -> tuple[QuoteHeader, SgxReportBody]:
    """Parse the 432-byte SGX quote body (header + report body, no signature data).

    Teaclave's attestation reports carry only this part of a quote.

    Raises:
        EvidenceFormatError: the length is wrong.
    """
    if len(data) != SGX_QUOTE_BODY_SIZE:
        raise EvidenceFormatError(f"SGX quote body must be {SGX_QUOTE_BODY_SIZE} bytes")
    r = Reader(data[:HEADER_SIZE], "quote body header")
    header = _parse_header(r)
    r.end()
    return header, parse_sgx_report_body(data[HEADER_SIZE:])


def _parse_td_report(r: Reader, body_type: int = TD_REPORT10_BODY_TYPE) -> TdReport:
    def m(field: str) -> bytes:
        return r.take(48, field)

    tee_tcb_svn = r.take(16, "tee_tcb_svn")
    mr_seam, mr_signer_seam = m("mr_seam"), m("mr_signer_seam")
    seam_attributes = r.take(8, "seam_attributes")
    td_attributes = r.take(8, "td_attributes")
    xfam = r.take(8, "xfam")
    mr_td, mr_config_id, mr_owner, mr_owner_config = (
        m("mr_td"), m("mr_config_id"), m("mr_owner"), m("mr_owner_config"))
    rtmrs = (m("rtmr0"), m("rtmr1"), m("rtmr2"), m("rtmr3"))
    report_data = r.take(64, "report_data")
    fields = (tee_tcb_svn, mr_seam, mr_signer_seam, seam_attributes, td_attributes, xfam, mr_td,
              mr_config_id, mr_owner, mr_owner_config, rtmrs, report_data)
    if body_type == TD_REPORT15_BODY_TYPE:
        return TdReport15(*fields, tee_tcb_svn2=r.take(16, "tee_tcb_svn2"),
                          mr_servicetd=m("mr_servicetd"))
    return TdReport(*fields)


_V5_BODY_SIZES = {TD_REPORT10_BODY_TYPE: TDX_REPORT_SIZE, TD_REPORT15_BODY_TYPE: TDX_REPORT15_SIZE}


def _parse_v5_body(r: Reader) -> TdReport:
    body_type, size = r.u16("body type"), r.u32("body size")
    if body_type not in _V5_BODY_SIZES:
        raise EvidenceFormatError(
            f"TDX quote v5: body type {body_type} unsupported (2 = TD report 1.0, 3 = 1.5)")
    if size != _V5_BODY_SIZES[body_type]:
        raise EvidenceFormatError(
            f"TDX quote v5: body type {body_type} must be {_V5_BODY_SIZES[body_type]} bytes, "
            f"header says {size}")
    body = Reader(r.take(size, "report body"), "TD report")
    report = _parse_td_report(body, body_type)
    body.end()
    return report


def _parse_cert_data(r: Reader, limits: Limits) -> tuple[int, bytes]:
    cert_type = r.u16("certification data type")
    size = r.u32("certification data size")
    if size > limits.max_quote_bytes:
        raise EvidenceTooLargeError("quote: certification data exceeds max_quote_bytes")
    return cert_type, r.take(size, "certification data")


def _parse_signature(data: bytes, tdx: bool, limits: Limits) -> QuoteSignature:
    r = Reader(data, "quote signature data")
    report_signature = r.take(64, "report signature")
    attestation_key = r.take(64, "attestation key")
    if tdx:
        cert_type, inner = _parse_cert_data(r, limits)
        r.end()
        if cert_type != CERT_TYPE_QE_REPORT:
            raise EvidenceFormatError(f"TDX quote: certification data type {cert_type}, want 6")
        r = Reader(inner, "QE report certification data")
    qe_report_raw = r.take(SGX_REPORT_SIZE, "QE report")
    qe_report_signature = r.take(64, "QE report signature")
    qe_auth_data = r.take(r.u16("QE auth data size"), "QE auth data")
    cert_type, pck_chain_pem = _parse_cert_data(r, limits)
    r.end()
    if cert_type != CERT_TYPE_PCK_CHAIN:
        raise EvidenceFormatError(f"quote: certification data type {cert_type}, want 5")
    return QuoteSignature(
        report_signature, attestation_key, parse_sgx_report_body(qe_report_raw), qe_report_raw,
        qe_report_signature, qe_auth_data, pck_chain_pem,
    )


def parse_quote(unverified_quote: bytes, limits: Limits | None = None) -> SgxQuote | TdxQuote:
    """Parse an SGX v3, TDX v4 or TDX v5 ECDSA-P256 quote.

    Args:
        unverified_quote: the raw quote as received.
        limits: caps; ``max_quote_bytes`` bounds the input.

    Returns:
        The typed quote. Its fields are NOT verified.

    Raises:
        EvidenceTooLargeError: the quote exceeds ``limits.max_quote_bytes``.
        EvidenceFormatError: anything else about the structure is wrong.
    """
    limits = limits or Limits()
    if len(unverified_quote) > limits.max_quote_bytes:
        raise EvidenceTooLargeError(
            f"quote of {len(unverified_quote)} bytes exceeds max_quote_bytes "
            f"({limits.max_quote_bytes})"
        )
    r = Reader(bytes(unverified_quote), "quote")
    header = _parse_header(r)
    if header.attestation_key_type != ATTESTATION_KEY_ECDSA_P256:
        raise EvidenceFormatError(
            f"quote: attestation key type {header.attestation_key_type} unsupported (want 2)")
    body: SgxReportBody | TdReport
    if header.version == 3 and header.tee_type == TEE_TYPE_SGX:
        body = parse_sgx_report_body(r.take(SGX_REPORT_SIZE, "report body"))
    elif header.version == 4 and header.tee_type == TEE_TYPE_TDX:
        body = _parse_td_report(r)
    elif header.version == 5 and header.tee_type == TEE_TYPE_TDX:
        body = _parse_v5_body(r)
    else:
        raise EvidenceFormatError(
            f"quote: version {header.version} with TEE type {header.tee_type:#x} unsupported "
            "(SGX v3, TDX v4 and TDX v5 are)"
        )
    signature = _parse_signature(r.take(r.u32("signature data size"), "signature data"),
                                 isinstance(body, TdReport), limits)
    # Real TDX quotes come in a zero-padded buffer (the dcap-qvl sample has 70
    # bytes); accept zero padding only, so no unsigned data can hide there.
    if any(r.take(r.remaining, "padding")):
        raise EvidenceFormatError("quote: non-zero bytes after the signature data")
    if isinstance(body, TdReport):
        return TdxQuote(header, body, signature, bytes(unverified_quote))
    return SgxQuote(header, body, signature, bytes(unverified_quote))


def unverified_report_data(unverified_quote: bytes) -> tuple[str, bytes]:
    """The TEE type and REPORTDATA of a quote, from its header and body only.

    Reads no signature data (callers that must not fail on a truncated
    certification tail, like the certificate builder, use it); nothing is
    verified.

    Raises:
        EvidenceFormatError: unsupported version/TEE type or too short.
    """
    r = Reader(bytes(unverified_quote), "quote")
    header = _parse_header(r)
    if header.version == 3 and header.tee_type == TEE_TYPE_SGX:
        return "sgx", parse_sgx_report_body(r.take(SGX_REPORT_SIZE, "report body")).report_data
    if header.version == 4 and header.tee_type == TEE_TYPE_TDX:
        return "tdx", _parse_td_report(r).report_data
    if header.version == 5 and header.tee_type == TEE_TYPE_TDX:
        return "tdx", _parse_v5_body(r).report_data
    raise EvidenceFormatError(
        f"quote: version {header.version} with TEE type {header.tee_type:#x} unsupported")
