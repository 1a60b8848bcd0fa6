"""Evidence formats: what a TEE produces, parsed (never trusted) into typed models.

SGX v3 and TDX v4/v5 DCAP quotes (``_quote``: header, SGX report body, TD report
1.0/1.5, signature data), SEV-SNP attestation reports (``_snp_report``) with
their per-product TCB layouts and VCEK/VLEK extensions (``_snp_tcb``), the SNP
GHCB certificate table (``_snp_certtable``), all read through one bounds-checked
``Reader``; and ``Evidence``/``VerifiedEvidence``/``Attester`` (``_evidence``),
the types that travel between attesters and verifiers. Parsing checks structure
only: nothing here is trusted until a verifier of
:mod:`confide.attestation.appraisal` has checked the same bytes.
"""

from ._evidence import Attester, Evidence, TeeType, VerifiedEvidence
from ._quote import (
    CERT_TYPE_PCK_CHAIN,
    CERT_TYPE_QE_REPORT,
    SGX_QUOTE_BODY_SIZE,
    TD_REPORT10_BODY_TYPE,
    TD_REPORT15_BODY_TYPE,
    TEE_TYPE_SGX,
    TEE_TYPE_TDX,
    QuoteHeader,
    SgxQuote,
    SgxReportBody,
    TdReport,
    TdReport15,
    TdxQuote,
    parse_quote,
    parse_sgx_quote_body,
    unverified_report_data,
)
from ._snp_certtable import cert_table_to_pem
from ._snp_report import SNP_REPORT_SIZE, SnpReport, SnpSigningKey, parse_snp_report
from ._snp_tcb import (
    SNP_PRODUCTS,
    SnpEndorsementKey,
    SnpProduct,
    SnpTcb,
    read_endorsement_key,
    tcb_layout,
)

__all__ = [
    "CERT_TYPE_PCK_CHAIN",
    "CERT_TYPE_QE_REPORT",
    "SGX_QUOTE_BODY_SIZE",
    "SNP_PRODUCTS",
    "SNP_REPORT_SIZE",
    "TD_REPORT10_BODY_TYPE",
    "TD_REPORT15_BODY_TYPE",
    "TEE_TYPE_SGX",
    "TEE_TYPE_TDX",
    "Attester",
    "Evidence",
    "QuoteHeader",
    "SgxQuote",
    "SgxReportBody",
    "SnpEndorsementKey",
    "SnpProduct",
    "SnpReport",
    "SnpSigningKey",
    "SnpTcb",
    "TdReport",
    "TdReport15",
    "TdxQuote",
    "TeeType",
    "VerifiedEvidence",
    "cert_table_to_pem",
    "parse_quote",
    "parse_sgx_quote_body",
    "parse_snp_report",
    "read_endorsement_key",
    "tcb_layout",
    "unverified_report_data",
]
