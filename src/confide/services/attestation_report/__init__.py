"""The attestation report service: verifies quotes, signs Teaclave-style reports.

Teaclave's DCAP reference API over HTTP(S) (``confide attestation-service``, and
in process on the all-in-one node). See ``docs/attested-channels.md``.
"""

from ._authority import ReportAuthority, make_report
from ._http import (
    ReportService,
    client_tls_context,
    make_report_server,
    request_report,
    run_attestation_service,
    server_tls_context,
)

__all__ = [
    "ReportAuthority",
    "ReportService",
    "client_tls_context",
    "make_report",
    "make_report_server",
    "request_report",
    "run_attestation_service",
    "server_tls_context",
]
