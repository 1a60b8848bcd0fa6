"""The error hierarchy of ``confide.attestation``: every subpackage raises from here.

Every error raised by this package derives from :class:`AttestationError`.
Foreign exceptions (``dcap_qvl``'s ``ValueError``, ``cryptography``'s
``InvalidSignature``, ``OSError`` from configfs, ...) are wrapped exactly once,
at the boundary where they happen, with ``raise ... from e``.

Tree::

    AttestationError
    ├── AppraisalError                 evidence refused (always a specific subclass)
    │   ├── EvidenceFormatError        bytes do not parse as the claimed evidence type
    │   │   ├── EvidenceTooLargeError  a size or depth cap of ``Limits`` was exceeded
    │   │   └── ReservedFieldError     a reserved or unsigned byte is not zero (names it)
    │   ├── EvidenceVerificationError  cryptographic verification failed
    │   │   ├── QuoteSignatureError        enclave/TD report signature invalid
    │   │   │   ├── QeReportSignatureError     the PCK key did not sign the QE report
    │   │   │   └── AttestationKeyBindingError QE report does not bind the attestation key
    │   │   ├── CollateralSignatureError   TCB info / QE identity signature invalid
    │   │   ├── CollateralExpiredError     collateral outside its validity window
    │   │   ├── CollateralMismatchError    collateral of another platform / TEE type
    │   │   ├── CertificateChainError      PCK / VCEK chain or a CRL invalid
    │   │   │   └── CertificateRevokedError    a CRL revokes a certificate of the chain
    │   │   ├── QeIdentityMismatchError    the QE is not the one QE identity describes
    │   │   ├── TdxModuleMismatchError     the TDX module is not one TCB info lists
    │   │   ├── TcbLevelNotFoundError      platform TCB older than every listed level
    │   │   ├── TcbRevokedError            the platform's TCB level is revoked
    │   │   └── TcbMismatchError           SNP reported TCB / chip id / product != VCEK
    │   ├── EmptyPolicyError           the policy trusts nothing (fails closed)
    │   ├── UntrustedRootError         evidence chains to a root not in the policy
    │   ├── SigningKeyNotAllowedError  SNP report signed by a key type not allowed
    │   ├── TeeTypeMismatchError       evidence type differs from the quote's
    │   ├── DebugNotAllowedError       debug enclave / TD / guest
    │   ├── MeasurementNotAcceptedError
    │   ├── ReportDataMismatchError
    │   ├── TcbStatusNotAllowedError
    │   └── EvidenceTooOldError
    ├── EnclaveInfoError               enclave_info.toml malformed
    │   └── EnclaveInfoSignatureError  bad/missing signature or under threshold
    ├── AttesterError                  producing evidence failed (I/O side)
    ├── CollateralFetchError           fetching collateral failed (I/O side)
    └── RaTlsError                     attested TLS refused a peer (``reason`` names why)
        ├── CertificateFormatError     certificate or attestation extension malformed
        ├── ReportError                Teaclave report, its signature or signer chain
        ├── EvidenceError              the quote verifier or the report's status refused
        ├── EvidenceBindingError       evidence does not bind the presented key
        ├── MeasurementMismatchError   not the measurement expected for the service
        └── ReportServiceError         the report service cannot endorse this quote
"""

from __future__ import annotations

__all__ = [
    "AppraisalError",
    "AttestationError",
    "AttestationKeyBindingError",
    "AttesterError",
    "CertificateChainError",
    "CertificateFormatError",
    "CertificateRevokedError",
    "CollateralExpiredError",
    "CollateralFetchError",
    "CollateralMismatchError",
    "CollateralSignatureError",
    "DebugNotAllowedError",
    "EmptyPolicyError",
    "EnclaveInfoError",
    "EnclaveInfoSignatureError",
    "EvidenceBindingError",
    "EvidenceError",
    "EvidenceFormatError",
    "EvidenceTooLargeError",
    "EvidenceTooOldError",
    "EvidenceVerificationError",
    "MeasurementMismatchError",
    "MeasurementNotAcceptedError",
    "QeIdentityMismatchError",
    "QeReportSignatureError",
    "QuoteSignatureError",
    "RaTlsError",
    "ReportDataMismatchError",
    "ReportError",
    "ReportServiceError",
    "ReservedFieldError",
    "SigningKeyNotAllowedError",
    "TcbLevelNotFoundError",
    "TcbMismatchError",
    "TcbRevokedError",
    "TcbStatusNotAllowedError",
    "TdxModuleMismatchError",
    "TeeTypeMismatchError",
    "UntrustedRootError",
]


class AttestationError(Exception):
    """Base class of every error raised by ``confide.attestation``."""


class AppraisalError(AttestationError):
    """Evidence was refused; the subclass and message say why."""


class EvidenceFormatError(AppraisalError):
    """The bytes do not parse as the claimed evidence structure."""


class EvidenceTooLargeError(EvidenceFormatError):
    """An untrusted input exceeded a cap from :class:`confide.config.Limits`."""


class ReservedFieldError(EvidenceFormatError):
    """A reserved field, or bytes the signature does not cover, are not zero.

    Evidence has one accepted encoding: bytes nobody signed, or that the
    format reserves, cannot carry anything (as DCAP quotes refuse trailing
    bytes). ``field`` names the area and ``offset`` is the first non-zero byte.
    """

    def __init__(self, field: str, offset: int) -> None:
        super().__init__(f"{field}: non-zero byte at offset {offset:#x} must be zero")
        self.field = field
        self.offset = offset


class EvidenceVerificationError(AppraisalError):
    """Cryptographic verification of evidence or collateral failed."""


class QuoteSignatureError(EvidenceVerificationError):
    """The quote's report signature (or QE binding) does not verify."""


class QeReportSignatureError(QuoteSignatureError):
    """The QE report is not signed by the PCK certificate's key."""


class AttestationKeyBindingError(QuoteSignatureError):
    """The QE report's REPORTDATA does not bind the attestation key and QE auth data."""


class CollateralSignatureError(EvidenceVerificationError):
    """A signature over TCB info or QE identity does not verify."""


class CollateralExpiredError(EvidenceVerificationError):
    """Collateral (TCB info, QE identity, a CRL) is not valid at ``now``."""


class CollateralMismatchError(EvidenceVerificationError):
    """The collateral is for another platform (FMSPC) or TEE type (SGX vs TDX)."""


class CertificateChainError(EvidenceVerificationError):
    """A certificate chain or CRL does not verify to the trusted root."""


class CertificateRevokedError(CertificateChainError):
    """A CRL of the collateral revokes a certificate of the quote's chain."""


class QeIdentityMismatchError(EvidenceVerificationError):
    """The quoting enclave differs from the signed QE identity (MRSIGNER, ISVPRODID,
    MISCSELECT, ATTRIBUTES) or its ISVSVN is below every listed level."""


class TdxModuleMismatchError(EvidenceVerificationError):
    """The TDX module (MRSIGNERSEAM, SEAMATTRIBUTES, SVN) is not one the TCB info lists."""


class TcbLevelNotFoundError(EvidenceVerificationError):
    """The platform's TCB is older than every level of the signed TCB info."""


class TcbRevokedError(EvidenceVerificationError):
    """The TCB level matching the platform is marked ``Revoked``."""


class TcbMismatchError(EvidenceVerificationError):
    """An SEV-SNP report's reported TCB, chip id or product differs from its VCEK."""


class EmptyPolicyError(AppraisalError):
    """The policy trusts no root or accepts no measurement: fail closed."""


class UntrustedRootError(AppraisalError):
    """The evidence chains to a root the policy does not trust."""


class SigningKeyNotAllowedError(AppraisalError):
    """An SEV-SNP report is signed by a key type (VCEK, VLEK) the policy does not allow."""


class TeeTypeMismatchError(AppraisalError):
    """The evidence's declared TEE type differs from what it contains."""


class DebugNotAllowedError(AppraisalError):
    """The enclave/TD/guest runs in debug mode and the policy forbids it."""


class MeasurementNotAcceptedError(AppraisalError):
    """The measurement is not listed for the service in enclave_info."""


class ReportDataMismatchError(AppraisalError):
    """The report data differs from what the verifier expected."""


class TcbStatusNotAllowedError(AppraisalError):
    """The platform TCB status is not in the policy's allowed set."""


class EvidenceTooOldError(AppraisalError):
    """The evidence is older than the policy's ``max_evidence_age``."""


class EnclaveInfoError(AttestationError):
    """``enclave_info.toml`` is malformed or lacks a required entry."""


class EnclaveInfoSignatureError(EnclaveInfoError):
    """An auditor signature is invalid, missing, or below the threshold."""


class AttesterError(AttestationError):
    """An attester could not produce evidence."""


class CollateralFetchError(AttestationError):
    """Collateral could not be fetched from a PCCS/PCS or the cache."""


class RaTlsError(AttestationError):
    """Base of every error raised by the attested-TLS code.

    Attributes:
        reason: a stable, machine-readable code such as
            ``"report-signature-invalid"``; callers and tests match on it.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


class CertificateFormatError(RaTlsError):
    """The certificate, or an attestation extension in it, is malformed or too large."""


class ReportError(RaTlsError):
    """The Teaclave attestation report, its signature or its signer chain is unacceptable."""


class EvidenceError(RaTlsError):
    """The evidence (quote) was refused by the verifier or by policy (status, age)."""


class EvidenceBindingError(RaTlsError):
    """The evidence does not bind the key it is presented with (REPORTDATA, key hash, nonce)."""


class MeasurementMismatchError(RaTlsError):
    """The attested measurement is not the one the caller expects for that service."""


class ReportServiceError(RaTlsError):
    """The attestation report service cannot produce a report for this request."""
