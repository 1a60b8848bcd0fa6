"""dcap-qvl's failures, mapped once to confide's error tree.

dcap-qvl 0.7.0 reports every failure as a ``ValueError`` whose text names the
check ("Verification failed: <reason>[\\n\\nCaused by: ...]"). The table below
maps each reason we can provoke (see ``tests/attestation/test_dcap_errors.py``,
one mutated vector per row) to a specific class; the first matching row wins,
so the specific rows come before the broad ones. A text no row matches still
fails, as the generic :class:`EvidenceVerificationError`.
"""

from __future__ import annotations

from .._errors import (
    AttestationError,
    AttestationKeyBindingError,
    CertificateChainError,
    CertificateRevokedError,
    CollateralExpiredError,
    CollateralMismatchError,
    CollateralSignatureError,
    DebugNotAllowedError,
    EvidenceFormatError,
    EvidenceVerificationError,
    QeIdentityMismatchError,
    QeReportSignatureError,
    QuoteSignatureError,
    TcbLevelNotFoundError,
    TcbRevokedError,
    TdxModuleMismatchError,
)

__all__ = ["DCAP_ERROR_MAP", "map_dcap_error"]

#: (substrings of dcap-qvl's message, error class); first match wins.
DCAP_ERROR_MAP: tuple[tuple[tuple[str, ...], type[AttestationError]], ...] = (
    (("Debug mode",), DebugNotAllowedError),
    (("Failed to decode quote", "Failed to decode TcbInfo", "Failed to decode QeIdentity"),
     EvidenceFormatError),
    # validity windows ("TCBInfo expired", "... issue date is in the future", CrlExpired,
    # CertNotValidYet, CertExpired inside "Failed to verify certificate chain")
    (("CrlExpired", "expired", "Expired", "in the future", "NotValidYet"), CollateralExpiredError),
    (("CertRevoked",), CertificateRevokedError),
    (("Signature is invalid for tcb_info", "Signature is invalid for qe_identity"),
     CollateralSignatureError),
    (("Signature is invalid for qe_report",), QeReportSignatureError),
    (("QE report hash mismatch",), AttestationKeyBindingError),
    (("ISV enclave report signature", "report signature", "attestation key"),
     QuoteSignatureError),
    (("Fmspc mismatch", "Unsupported QE Identity id", "with non-SGX TCB info",
      "with non-TDX TCB info"), CollateralMismatchError),
    (("QE MRSIGNER mismatch", "QE ISVPRODID mismatch", "QE MISCSELECT mismatch",
      "QE ATTRIBUTES mismatch", "QE ISVSVN"), QeIdentityMismatchError),
    (("TDX module",), TdxModuleMismatchError),
    (("No matching TCB level found",), TcbLevelNotFoundError),
    (("TCB status is invalid: Revoked",), TcbRevokedError),
    (("certificate chain", "CRL", "Crl", "certificate"), CertificateChainError),
)


def map_dcap_error(e: ValueError) -> AttestationError:
    """The confide error for dcap-qvl's ``e`` (the caller raises it ``from e``)."""
    text = str(e)
    for needles, cls in DCAP_ERROR_MAP:
        if any(n in text for n in needles):
            what = "refuses debug enclaves" if cls is DebugNotAllowedError else "refused"
            return cls(f"dcap-qvl {what}: {text}")
    return EvidenceVerificationError(f"dcap-qvl refused: {text}")
