"""Every cap on untrusted input lives here (STYLE practice 7).

Each field is the largest accepted value; a test per cap checks that cap + 1
is refused with a clear error. Components receive a ``Limits`` instance rather
than reading module constants, so tests can shrink them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits"]

MiB = 1024 * 1024


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
    # --- builtin functions (confide.functions) ---
    builtin_max_input_bytes: int = 64 * MiB  # one input file read by a builtin
    builtin_max_rows: int = 1_000_000  # data lines parsed by a numeric builtin
    builtin_max_feature_size: int = 10_000  # feature_size / model columns
    builtin_max_gbdt_iterations: int = 10_000  # trees trained by builtin-gbdt-train
    builtin_max_gbdt_depth: int = 32  # max_depth of one gbdt tree
    builtin_max_gbdt_nodes: int = 1_000_000  # nodes in a gbdt model read by predict
    builtin_max_lr_iterations: int = 1_000_000  # alg_iters of logistic regression
    builtin_max_parties: int = 256  # num_user of private-join-and-compute
    builtin_max_image_pixels: int = 16_777_216  # decoded face-detection image (4096²)
