"""Attestation: evidence, verification, appraisal and attested TLS.

This file currently exports only the attested-TLS part (certificates, the
Teaclave-compatible report service, client checks); the quote verifiers and
appraisal policy are merged in alongside.
"""

from confide.attestation._cert_fetch import fetch_unverified_certificate
from confide.attestation._client_check import (
    VerifiedPeer,
    verify_endorsement,
    verify_ratls_certificate,
    verify_teaclave_certificate,
)
from confide.attestation._ratls_cert import (
    RATLS_ENDORSEMENT_OID,
    RATLS_EVIDENCE_OID,
    AttestedCertificate,
    EndorsedReport,
    build_attested_certificate,
    issue_attested_certificate,
    renewal_due,
)
from confide.attestation._ratls_types import (
    CertificateFormatError,
    EvidenceBindingError,
    EvidenceError,
    GetQuote,
    MeasurementMismatchError,
    QuoteVerdict,
    RaTlsError,
    ReportError,
    ReportServiceError,
    VerifyQuote,
)
from confide.attestation._report_http import (
    ReportService,
    make_report_server,
    request_report,
    run_attestation_service,
)
from confide.attestation._report_service import ReportAuthority, make_report
from confide.attestation._teaclave_report import (
    DCAP_TO_IAS_STATUS,
    TEACLAVE_EXTENSION_OID,
    tls_report_data,
)

__all__ = [
    "DCAP_TO_IAS_STATUS",
    "RATLS_ENDORSEMENT_OID",
    "RATLS_EVIDENCE_OID",
    "TEACLAVE_EXTENSION_OID",
    "AttestedCertificate",
    "CertificateFormatError",
    "EndorsedReport",
    "EvidenceBindingError",
    "EvidenceError",
    "GetQuote",
    "MeasurementMismatchError",
    "QuoteVerdict",
    "RaTlsError",
    "ReportAuthority",
    "ReportError",
    "ReportService",
    "ReportServiceError",
    "VerifiedPeer",
    "VerifyQuote",
    "build_attested_certificate",
    "fetch_unverified_certificate",
    "issue_attested_certificate",
    "make_report",
    "make_report_server",
    "renewal_due",
    "request_report",
    "run_attestation_service",
    "tls_report_data",
    "verify_endorsement",
    "verify_ratls_certificate",
    "verify_teaclave_certificate",
]
