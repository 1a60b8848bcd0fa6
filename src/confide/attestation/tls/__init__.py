"""Attested TLS: the certificates a node presents and the checks a client runs.

``_ratls_types`` is the seam with appraisal (``GetQuote``, ``VerifyQuote``,
``QuoteVerdict``); ``_teaclave_report`` the Teaclave/IAS-v4 report format and
certificate extension; ``_ratls_cert`` builds the attested certificate (Teaclave
extension first, RA-TLS evidence and collateral); ``_client_check`` verifies a
peer's certificate; ``_cert_fetch`` reads a server's certificate before trusting
it; ``_bundle`` is a client's trust inputs on disk; ``_verdicts`` builds the
``VerifyQuote`` callables from the real verifiers of
:mod:`confide.attestation.appraisal`. See ``docs/attested-channels.md``.
"""

from ._bundle import (
    API_CERT_FILE,
    AS_ROOT_FILE,
    AUDITORS_DIR,
    ENCLAVE_INFO_FILE,
    SIM_DCAP_ROOT_FILE,
    TrustBundle,
    write_public_file,
)
from ._cert_fetch import fetch_unverified_certificate
from ._client_check import (
    VerifiedPeer,
    verify_endorsement,
    verify_ratls_certificate,
    verify_teaclave_certificate,
)
from ._ratls_cert import (
    RATLS_ENDORSEMENT_OID,
    RATLS_EVIDENCE_OID,
    AttestedCertificate,
    EndorsedReport,
    build_attested_certificate,
    issue_attested_certificate,
    parse_ratls_evidence,
    renewal_due,
)
from ._ratls_types import GetQuote, QuoteVerdict, VerifyQuote
from ._teaclave_report import (
    DCAP_TO_IAS_STATUS,
    QUOTE_BODY_BYTES,
    TEACLAVE_EXTENSION_OID,
    encode_report,
    ias_status_of,
    parse_report,
    parse_teaclave_extension,
    tls_report_data,
)
from ._verdicts import (
    DcapVerdict,
    certificate_collateral,
    dcap_quote_verifier,
    policy_quote_verifier,
    unverified_certificate_tee,
    verify_ratls_with_policy,
)

__all__ = [
    "API_CERT_FILE",
    "AS_ROOT_FILE",
    "AUDITORS_DIR",
    "DCAP_TO_IAS_STATUS",
    "ENCLAVE_INFO_FILE",
    "QUOTE_BODY_BYTES",
    "RATLS_ENDORSEMENT_OID",
    "RATLS_EVIDENCE_OID",
    "SIM_DCAP_ROOT_FILE",
    "TEACLAVE_EXTENSION_OID",
    "AttestedCertificate",
    "DcapVerdict",
    "EndorsedReport",
    "GetQuote",
    "QuoteVerdict",
    "TrustBundle",
    "VerifiedPeer",
    "VerifyQuote",
    "build_attested_certificate",
    "certificate_collateral",
    "dcap_quote_verifier",
    "encode_report",
    "fetch_unverified_certificate",
    "ias_status_of",
    "issue_attested_certificate",
    "parse_ratls_evidence",
    "parse_report",
    "parse_teaclave_extension",
    "policy_quote_verifier",
    "renewal_due",
    "tls_report_data",
    "unverified_certificate_tee",
    "verify_endorsement",
    "verify_ratls_certificate",
    "verify_ratls_with_policy",
    "verify_teaclave_certificate",
    "write_public_file",
]
