"""Errors and seams of the attested-TLS layer.

This module is the narrow seam between attested TLS (certificates, the report
service, client checks) and quote verification, which lives elsewhere in this
package. Attested TLS never parses or verifies the quote's signature itself:

* an attester is a ``GetQuote`` callable: 64 bytes of REPORTDATA in, an SGX v3
  quote out (its first 432 bytes are the "quote body", REPORTDATA at
  ``[368:432]``);
* a verifier is a ``VerifyQuote`` callable: quote bytes and the time of the
  decision in, a :class:`QuoteVerdict`-shaped object out, or an exception if
  the quote does not verify.

Errors: every error raised by attested-TLS code is a :class:`RaTlsError`
carrying a short machine-readable ``reason`` (tests and callers match on it)
and a human-readable message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Protocol

from .._errors import AttestationError

__all__ = [
    "CertificateFormatError",
    "EvidenceBindingError",
    "EvidenceError",
    "GetQuote",
    "MeasurementMismatchError",
    "QuoteVerdict",
    "RaTlsError",
    "ReportError",
    "ReportServiceError",
    "VerifyQuote",
]


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


class QuoteVerdict(Protocol):
    """What a quote verifier returns once a quote *verified*.

    Any object with these read-only attributes fits (the verifier's own
    dataclass, a test fake). ``status`` is the DCAP TCB status as dcap-qvl
    spells it (``"UpToDate"``, ``"SWHardeningNeeded"``, ...).
    """

    @property
    def status(self) -> str: ...

    @property
    def advisories(self) -> Sequence[str]: ...

    @property
    def mr_enclave(self) -> bytes: ...

    @property
    def mr_signer(self) -> bytes: ...

    @property
    def report_data(self) -> bytes: ...


GetQuote = Callable[[bytes], bytes]
"""An attester: 64 bytes of REPORTDATA in, an SGX v3 quote out."""

VerifyQuote = Callable[[bytes, dt.datetime], QuoteVerdict]
"""A verifier: ``(quote, now)`` in, a verdict out; raises if the quote does not verify."""
