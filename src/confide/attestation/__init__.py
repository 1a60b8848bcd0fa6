"""Attestation: evidence, verifiers, attesters and appraisal policy.

Trust decisions are pure (:class:`AppraisalPolicy`, :func:`verify_dcap_quote`,
:func:`verify_snp_report`, :func:`verify_enclave_info`): bytes, collateral and
``now`` in, a typed result or an :class:`AttestationError` out. Attesters and
collateral fetching are the I/O side. See ``docs/attestation.md``.
"""

from ._attesters import ConfigfsTsmAttester, GramineAttester
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
    TcbMismatchError,
    TcbStatusNotAllowedError,
    TeeTypeMismatchError,
    UntrustedRootError,
)
from ._evidence import Attester, Evidence, VerifiedEvidence
from ._measure import package_measurement
from ._policy import AppraisalPolicy, AppraisalResult, UnsafeTrustSimRoot
from ._quote import QuoteHeader, SgxQuote, SgxReportBody, TdReport, TdxQuote, parse_quote
from ._roots import AMD_ARK_MILAN_DER, INTEL_SGX_ROOT_CA_DER
from ._sim import SIM_WARNING, SimAttester
from ._snp import SnpReport, SnpTcb, parse_snp_report, verify_snp_report

__all__ = [
    "AMD_ARK_MILAN_DER",
    "INTEL_SGX_ROOT_CA_DER",
    "SIM_WARNING",
    "AppraisalError",
    "AppraisalPolicy",
    "AppraisalResult",
    "AttestationError",
    "Attester",
    "AttesterError",
    "CertificateChainError",
    "CollateralExpiredError",
    "CollateralFetchError",
    "CollateralFetcher",
    "CollateralSignatureError",
    "ConfigfsTsmAttester",
    "DebugNotAllowedError",
    "EmptyPolicyError",
    "EnclaveInfo",
    "EnclaveInfoError",
    "EnclaveInfoSignatureError",
    "Evidence",
    "EvidenceFormatError",
    "EvidenceTooLargeError",
    "EvidenceTooOldError",
    "EvidenceVerificationError",
    "GramineAttester",
    "MeasurementNotAcceptedError",
    "QuoteHeader",
    "QuoteSignatureError",
    "ReportDataMismatchError",
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
    "UnsafeTrustSimRoot",
    "UntrustedRootError",
    "VerifiedEvidence",
    "generate_enclave_info",
    "package_measurement",
    "parse_quote",
    "parse_snp_report",
    "sign_enclave_info",
    "verify_dcap_quote",
    "verify_enclave_info",
    "verify_snp_report",
]
