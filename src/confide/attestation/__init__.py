"""Attestation: evidence, verifiers, attesters, appraisal policy and attested TLS.

Trust decisions are pure (:class:`AppraisalPolicy`, :func:`verify_dcap_quote`,
:func:`verify_snp_report`, :func:`verify_enclave_info`,
:func:`verify_teaclave_certificate`, :func:`verify_ratls_certificate`): bytes,
collateral and ``now`` in, a typed result or an error out. Attesters, collateral
fetching and certificate fetching are the I/O side. See ``docs/attestation.md``
and ``docs/attested-channels.md``.
"""

from ._attesters import ConfigfsTsmAttester, GramineAttester
from ._bundle import TrustBundle
from ._cert_fetch import fetch_unverified_certificate
from ._client_check import (
    VerifiedPeer,
    verify_endorsement,
    verify_ratls_certificate,
    verify_teaclave_certificate,
)
from ._collateral_fetch import CollateralFetcher
from ._dcap import verify_dcap_quote
from ._enclave_info import (
    EnclaveInfo,
    generate_enclave_info,
    sign_enclave_info,
    verify_enclave_info,
)
from ._errors import (
    AppraisalError,
    AttestationError,
    AttesterError,
    CertificateChainError,
    CollateralExpiredError,
    CollateralFetchError,
    CollateralSignatureError,
    DebugNotAllowedError,
    EmptyPolicyError,
    EnclaveInfoError,
    EnclaveInfoSignatureError,
    EvidenceFormatError,
    EvidenceTooLargeError,
    EvidenceTooOldError,
    EvidenceVerificationError,
    MeasurementNotAcceptedError,
    QuoteSignatureError,
    ReportDataMismatchError,
    ReservedFieldError,
    TcbMismatchError,
    TcbStatusNotAllowedError,
    TeeTypeMismatchError,
    UntrustedRootError,
)
from ._evidence import Attester, Evidence, VerifiedEvidence
from ._measure import package_measurement
from ._policy import AppraisalPolicy, AppraisalResult, UnsafeTrustSimRoot
from ._quote import QuoteHeader, SgxQuote, SgxReportBody, TdReport, TdxQuote, parse_quote
from ._ratls_cert import (
    RATLS_ENDORSEMENT_OID,
    RATLS_EVIDENCE_OID,
    AttestedCertificate,
    EndorsedReport,
    build_attested_certificate,
    issue_attested_certificate,
    renewal_due,
)
from ._ratls_types import (
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
from ._report_http import (
    ReportService,
    make_report_server,
    request_report,
    run_attestation_service,
)
from ._report_service import ReportAuthority, make_report
from ._roots import AMD_ARK_MILAN_DER, INTEL_SGX_ROOT_CA_DER
from ._sim import SIM_WARNING, SimAttester
from ._snp import SnpReport, SnpTcb, parse_snp_report, verify_snp_report
from ._teaclave_report import (
    DCAP_TO_IAS_STATUS,
    TEACLAVE_EXTENSION_OID,
    tls_report_data,
)
from ._verdicts import (
    DcapVerdict,
    certificate_collateral,
    dcap_quote_verifier,
    policy_quote_verifier,
    verify_ratls_with_policy,
)

__all__ = [
    "AMD_ARK_MILAN_DER",
    "DCAP_TO_IAS_STATUS",
    "INTEL_SGX_ROOT_CA_DER",
    "RATLS_ENDORSEMENT_OID",
    "RATLS_EVIDENCE_OID",
    "SIM_WARNING",
    "TEACLAVE_EXTENSION_OID",
    "AppraisalError",
    "AppraisalPolicy",
    "AppraisalResult",
    "AttestationError",
    "AttestedCertificate",
    "Attester",
    "AttesterError",
    "CertificateChainError",
    "CertificateFormatError",
    "CollateralExpiredError",
    "CollateralFetchError",
    "CollateralFetcher",
    "CollateralSignatureError",
    "ConfigfsTsmAttester",
    "DcapVerdict",
    "DebugNotAllowedError",
    "EmptyPolicyError",
    "EnclaveInfo",
    "EnclaveInfoError",
    "EnclaveInfoSignatureError",
    "EndorsedReport",
    "Evidence",
    "EvidenceBindingError",
    "EvidenceError",
    "EvidenceFormatError",
    "EvidenceTooLargeError",
    "EvidenceTooOldError",
    "EvidenceVerificationError",
    "GetQuote",
    "GramineAttester",
    "MeasurementMismatchError",
    "MeasurementNotAcceptedError",
    "QuoteHeader",
    "QuoteSignatureError",
    "QuoteVerdict",
    "RaTlsError",
    "ReportAuthority",
    "ReportDataMismatchError",
    "ReportError",
    "ReportService",
    "ReportServiceError",
    "ReservedFieldError",
    "SgxQuote",
    "SgxReportBody",
    "SimAttester",
    "SnpReport",
    "SnpTcb",
    "TcbMismatchError",
    "TcbStatusNotAllowedError",
    "TdReport",
    "TdxQuote",
    "TeeTypeMismatchError",
    "TrustBundle",
    "UnsafeTrustSimRoot",
    "UntrustedRootError",
    "VerifiedEvidence",
    "VerifiedPeer",
    "VerifyQuote",
    "build_attested_certificate",
    "certificate_collateral",
    "dcap_quote_verifier",
    "fetch_unverified_certificate",
    "generate_enclave_info",
    "issue_attested_certificate",
    "make_report",
    "make_report_server",
    "package_measurement",
    "parse_quote",
    "parse_snp_report",
    "policy_quote_verifier",
    "renewal_due",
    "request_report",
    "run_attestation_service",
    "sign_enclave_info",
    "tls_report_data",
    "verify_dcap_quote",
    "verify_enclave_info",
    "verify_endorsement",
    "verify_ratls_certificate",
    "verify_ratls_with_policy",
    "verify_snp_report",
    "verify_teaclave_certificate",
]
