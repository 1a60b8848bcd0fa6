"""Teaclave's attestation formats: the IAS-v4-style report and its certificate extension.

Pure parsing and encoding; no verification of signatures here (see
``_client_check``). Formats (spec §4, vectors README §E):

* The certificate extension (OID 2.16.840.1.113730.1.13, raw JSON bytes in the
  OCTET STRING): ``{"report":[ints],"signature":[ints],"certs":[[ints],...]}``
  where every byte string is a JSON array of integers 0-255.
* The report (the exact bytes the report service signed): compact JSON with
  sorted keys ``id``, ``isvEnclaveQuoteBody`` (base64 of the 432-byte quote
  body), ``isvEnclaveQuoteStatus``, ``timestamp``
  (``YYYY-MM-DDTHH:MM:SS.ffffff``, UTC, no zone) and ``version`` (4), plus
  ``advisoryIDs`` when the verifier reported advisories.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec

from ...config import Limits
from .._errors import CertificateFormatError, EvidenceBindingError, ReportError
from ..evidence import SGX_QUOTE_BODY_SIZE, parse_sgx_quote_body

__all__ = [
    "DCAP_TO_IAS_STATUS",
    "QUOTE_BODY_BYTES",
    "TEACLAVE_EXTENSION_OID",
    "QuoteBody",
    "TeaclaveReport",
    "UnverifiedEndorsement",
    "encode_report",
    "encode_teaclave_extension",
    "format_report_timestamp",
    "ias_status_of",
    "parse_report",
    "parse_report_timestamp",
    "parse_teaclave_extension",
    "tls_report_data",
]

TEACLAVE_EXTENSION_OID = "2.16.840.1.113730.1.13"
QUOTE_BODY_BYTES = SGX_QUOTE_BODY_SIZE  # 432
_REPORT_VERSION = 4

# DCAP TCB status (dcap-qvl spelling) -> IAS ``isvEnclaveQuoteStatus``, as
# Teaclave's DCAP reference server maps ``sgx_ql_qv_result_t`` (dcap/src/main.rs,
# ``to_report``). A status missing here is refused by the report service.
DCAP_TO_IAS_STATUS: Mapping[str, str] = {
    "UpToDate": "OK",
    "ConfigurationNeeded": "CONFIGURATION_NEEDED",
    "OutOfDate": "OUT_OF_DATE",
    "OutOfDateConfigurationNeeded": "OUT_OF_DATE_CONFIGURATION_NEEDED",
    "SWHardeningNeeded": "SW_HARDENING_NEEDED",
    "ConfigurationAndSWHardeningNeeded": "CONFIGURATION_AND_SW_HARDENING_NEEDED",
    "Revoked": "KEY_REVOKED",
}

_TIMESTAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?")


def ias_status_of(dcap_status: str) -> str:
    """Map a DCAP TCB status to the IAS status string Teaclave clients expect.

    Raises:
        ReportError: ``unknown-tcb-status`` for a status with no IAS equivalent.
    """
    try:
        return DCAP_TO_IAS_STATUS[dcap_status]
    except KeyError:
        raise ReportError("unknown-tcb-status", f"no IAS status for {dcap_status!r}") from None


def tls_report_data(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """The REPORTDATA binding a P-256 TLS key: X‖Y, 32 bytes each, big-endian (spec §4.2 step 7)."""
    if not isinstance(public_key.curve, ec.SECP256R1):
        raise EvidenceBindingError("key-not-p256", "the TLS key must be ECDSA P-256")
    numbers = public_key.public_numbers()
    return numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")


@dataclass(frozen=True)
class QuoteBody:
    """The 432-byte SGX quote body (header + ISV enclave report) Teaclave reports carry.

    Parsed by ``_quote.parse_sgx_quote_body``, the same code that parses whole quotes.
    """

    raw: bytes
    version: int
    attributes: bytes
    mr_enclave: bytes
    mr_signer: bytes
    isv_prod_id: int
    isv_svn: int
    report_data: bytes

    @property
    def debug(self) -> bool:
        """Whether the enclave's DEBUG attribute bit (bit 1 of ATTRIBUTES) is set."""
        return bool(self.attributes[0] & 0x02)

    @classmethod
    def parse(cls, raw: bytes) -> QuoteBody:
        """Parse exactly 432 bytes (Teaclave's Rust verifier requires exactly this size).

        Raises:
            ReportError: ``quote-body-size`` when the body is not 432 bytes.
        """
        if len(raw) != QUOTE_BODY_BYTES:
            raise ReportError("quote-body-size", f"quote body is {len(raw)} bytes, not 432")
        header, report = parse_sgx_quote_body(bytes(raw))
        return cls(
            raw=bytes(raw),
            version=header.version,
            attributes=report.attributes,
            mr_enclave=report.mr_enclave,
            mr_signer=report.mr_signer,
            isv_prod_id=report.isv_prod_id,
            isv_svn=report.isv_svn,
            report_data=report.report_data,
        )


@dataclass(frozen=True)
class UnverifiedEndorsement:
    """The extension's ``{report, signature, certs}``: nothing here is verified yet."""

    report: bytes
    signature: bytes
    certs: tuple[bytes, ...]


@dataclass(frozen=True)
class TeaclaveReport:
    """A parsed IAS-v4-style report. Fields other than the quote body may be absent.

    The unmodified Teaclave SDK reads only ``isvEnclaveQuoteBody``; strict
    verification also requires ``version``, ``timestamp`` and the status.
    """

    quote_body: QuoteBody
    report_id: str | None
    version: int | None
    status: str | None
    timestamp: dt.datetime | None
    advisories: tuple[str, ...]


def format_report_timestamp(now: dt.datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffff`` in UTC without a zone suffix (IAS / Teaclave style)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def parse_report_timestamp(text: str) -> dt.datetime:
    """Parse a report timestamp (1 to 9 fractional digits; nanoseconds are truncated).

    Raises:
        ReportError: ``report-timestamp-invalid``.
    """
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        raise ReportError("report-timestamp-invalid", f"bad report timestamp {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = (match.group(7) or "0").ljust(9, "0")
    try:
        return dt.datetime(year, month, day, hour, minute, second, int(fraction[:6]), tzinfo=dt.UTC)
    except ValueError as e:
        raise ReportError("report-timestamp-invalid", f"bad report timestamp {text!r}") from e


def encode_report(
    *,
    report_id: str,
    timestamp: dt.datetime,
    status: str,
    quote_body: bytes,
    advisories: Sequence[str] = (),
) -> bytes:
    """Serialise a report exactly as the report service signs it (compact JSON, sorted keys)."""
    if len(quote_body) != QUOTE_BODY_BYTES:
        raise ReportError("quote-body-size", f"quote body is {len(quote_body)} bytes, not 432")
    document: dict[str, object] = {
        "id": report_id,
        "isvEnclaveQuoteBody": base64.b64encode(quote_body).decode("ascii"),
        "isvEnclaveQuoteStatus": status,
        "timestamp": format_report_timestamp(timestamp),
        "version": _REPORT_VERSION,
    }
    if advisories:
        document["advisoryIDs"] = list(advisories)
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode("ascii")


def parse_report(report: bytes, limits: Limits) -> TeaclaveReport:
    """Parse report bytes (already signature-checked by the caller, or about to be).

    Raises:
        ReportError: ``report-too-large``, ``report-not-json``, ``report-field-invalid``,
            ``quote-body-size``, ``report-timestamp-invalid``.
    """
    if len(report) > limits.max_report_bytes:
        raise ReportError("report-too-large", f"report is {len(report)} bytes")
    try:
        document = json.loads(report)
    except (ValueError, UnicodeDecodeError) as e:
        raise ReportError("report-not-json", "the report is not JSON") from e
    if not isinstance(document, dict):
        raise ReportError("report-not-json", "the report is not a JSON object")
    body_b64 = document.get("isvEnclaveQuoteBody")
    if not isinstance(body_b64, str):
        raise ReportError("report-field-invalid", "isvEnclaveQuoteBody missing")
    try:
        body = base64.b64decode(body_b64, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ReportError("report-field-invalid", "isvEnclaveQuoteBody is not base64") from e
    version = document.get("version")
    status = document.get("isvEnclaveQuoteStatus")
    report_id = document.get("id")
    timestamp = document.get("timestamp")
    advisories = document.get("advisoryIDs", [])
    if not isinstance(advisories, list) or not all(isinstance(a, str) for a in advisories):
        raise ReportError("report-field-invalid", "advisoryIDs is not a list of strings")
    return TeaclaveReport(
        quote_body=QuoteBody.parse(body),
        report_id=report_id if isinstance(report_id, str) else None,
        version=version if type(version) is int else None,
        status=status if isinstance(status, str) else None,
        timestamp=parse_report_timestamp(timestamp) if isinstance(timestamp, str) else None,
        advisories=tuple(advisories),
    )


def _int_array(value: object, what: str, cap: int) -> bytes:
    if not isinstance(value, list):
        raise CertificateFormatError("extension-field-invalid", f"{what} is not an array")
    if len(value) > cap:
        raise CertificateFormatError("extension-too-large", f"{what} has {len(value)} bytes")
    # Checked in C (this runs on every attested connect over several KiB): only
    # plain ints (no bools, floats or strings), and bytes() refuses any outside 0..255.
    if not set(map(type, value)) <= {int}:
        raise CertificateFormatError("extension-field-invalid", f"{what} holds a non-byte")
    try:
        return bytes(value)
    except ValueError:
        raise CertificateFormatError("extension-field-invalid", f"{what} holds a non-byte") \
            from None


def encode_teaclave_extension(report: bytes, signature: bytes, certs: Sequence[bytes]) -> bytes:
    """The raw JSON extension value Teaclave's SDK parses (byte strings as arrays of ints)."""
    document = {
        "report": list(report),
        "signature": list(signature),
        "certs": [list(cert) for cert in certs],
    }
    return json.dumps(document, separators=(",", ":")).encode("ascii")


def parse_teaclave_extension(raw: bytes, limits: Limits) -> UnverifiedEndorsement:
    """Parse the extension JSON into its three byte strings, enforcing every cap.

    Raises:
        CertificateFormatError: ``extension-too-large``, ``extension-not-json``,
            ``extension-field-invalid``, ``report-chain-empty``.
    """
    if len(raw) > limits.max_attestation_extension_bytes:
        raise CertificateFormatError("extension-too-large", f"extension is {len(raw)} bytes")
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise CertificateFormatError("extension-not-json", "first extension is not JSON") from e
    if not isinstance(document, dict):
        raise CertificateFormatError("extension-not-json", "first extension is not an object")
    report = _int_array(document.get("report"), "report", limits.max_report_bytes)
    signature = _int_array(
        document.get("signature"), "signature", limits.max_report_signature_bytes
    )
    certs_value = document.get("certs")
    if not isinstance(certs_value, list):
        raise CertificateFormatError("extension-field-invalid", "certs is not an array")
    if len(certs_value) > limits.max_report_chain_certs:
        raise CertificateFormatError("extension-too-large", f"{len(certs_value)} certs")
    if not certs_value:
        raise CertificateFormatError("report-chain-empty", "no report-signing certificate")
    certs = tuple(_int_array(c, "certs[]", limits.max_certificate_bytes) for c in certs_value)
    return UnverifiedEndorsement(report=report, signature=signature, certs=certs)
