"""Every cap on untrusted input lives here (STYLE practice 7).

Each field is the largest accepted value; a test per cap checks that cap + 1
is refused with a clear error. Components receive a ``Limits`` instance rather
than reading module constants, so tests can shrink them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits"]

MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True)
class Limits:
    # --- RPC (spec §1.6: Teaclave caps messages at 4 MiB; we accept more) ---
    max_message_bytes: int = 16 * MiB
    max_id_chars: int = 256  # user ids, data names, argument keys
    max_password_chars: int = 1024
    max_list_items: int = 1024  # owners, allow-lists, DataMaps, arguments
    max_function_payload_bytes: int = 12 * MiB
    max_function_arguments_bytes: int = 4 * MiB
    max_url_chars: int = 8192
    max_audit_query_chars: int = 1024
    max_audit_limit: int = 10_000
    max_wait_ms: int = 60_000  # confide.v1 WaitTask
    max_pull_wait_ms: int = 30_000  # scheduler long-poll
    # --- execution ---
    max_return_value_bytes: int = 1 * MiB
    max_log_lines: int = 10_000
    # --- file agent (confide.execution.file_agent) ---
    # max_url_chars above also caps every URL the file agent is given and every
    # redirect Location it follows.
    max_download_bytes: int = 4 * GiB  # hard ceiling; callers pass a smaller max_bytes
    max_upload_bytes: int = 4 * GiB
    max_redirects: int = 5
    file_connect_timeout_s: float = 10.0
    file_read_timeout_s: float = 30.0  # per socket read/write, not the whole transfer
    file_transfer_timeout_s: float = 3600.0  # whole transfer incl. retries (slow drip)
    file_max_attempts: int = 3  # first try + retries on transient failures
    file_retry_backoff_s: float = 0.5  # doubled after each failed attempt
    # --- blob store (confide.services.blobstore) ---
    max_blob_bytes: int = 4 * GiB
    max_blob_name_chars: int = 512
    blob_read_timeout_s: float = 30.0  # per socket read while receiving an upload
    max_blob_connections: int = 64  # concurrent connections; more are answered 503
