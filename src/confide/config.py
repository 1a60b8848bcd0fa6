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
    # --- crypto (src/confide/crypto: file formats, untrusted ciphertext) ---
    # Ciphertext bytes decrypt_stream/compute_cmac accept, any schema.
    max_encrypted_file_bytes: int = 1024 * GiB
    # teaclave-file-128 plaintext size (read: the size field; write: the input).
    # The writer keeps 16 bytes per 4 KiB node in memory, so 16 GiB costs 64 MiB.
    max_teaclave_file_bytes: int = 16 * GiB
    # confide-stream-256 segment size field in the (untrusted) header.
    max_stream_segment_bytes: int = 16 * MiB
