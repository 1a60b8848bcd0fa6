"""The seams of the attested-TLS layer.

This module is the narrow seam between attested TLS (certificates, the report
service, client checks) and quote verification, which lives elsewhere in this
package. Attested TLS never parses or verifies the quote's signature itself:

* an attester is a ``GetQuote`` callable: 64 bytes of REPORTDATA in, an SGX v3
  quote out (its first 432 bytes are the "quote body", REPORTDATA at
  ``[368:432]``);
* a verifier is a ``VerifyQuote`` callable: quote bytes and the time of the
  decision in, a :class:`QuoteVerdict`-shaped object out, or an exception if
  the quote does not verify.

Errors: every error raised by attested-TLS code is a ``RaTlsError`` (defined
with the package's other errors in ``confide/attestation/_errors.py``) carrying
a short machine-readable ``reason`` (tests and callers match on it) and a
human-readable message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Protocol

__all__ = ["GetQuote", "QuoteVerdict", "VerifyQuote"]


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
