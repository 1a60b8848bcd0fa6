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
    # --- python sandbox (executors/python.py, executors/_sandbox/) ---
    python_wall_seconds: float = 60.0  # wall clock per run, enforced by the worker
    python_cpu_seconds: int = 60  # RLIMIT_CPU (soft; hard = soft + 1)
    python_memory_bytes: int = 2048 * MiB  # RLIMIT_AS of the function process
    python_max_threads: int = 32  # RLIMIT_NPROC inside the sandbox's user namespace
    python_max_open_files: int = 64  # RLIMIT_NOFILE
    python_max_file_bytes: int = 16 * MiB  # RLIMIT_FSIZE (files in the private /tmp)
    python_tmp_bytes: int = 32 * MiB  # size of the private tmpfs /tmp
    python_max_input_bytes: int = 512 * MiB  # plaintext of all inputs handed to one run
    python_max_output_bytes: int = 256 * MiB  # one output file
    python_max_total_output_bytes: int = 512 * MiB  # all bytes written to outputs in one run
    python_max_log_bytes: int = 1 * MiB  # captured save_log text per run
    python_max_log_line_chars: int = 4096  # one captured log line (longer ones are cut)
    python_max_frame_bytes: int = 1 * MiB  # one sandbox -> worker protocol frame
    python_max_stderr_bytes: int = 64 * 1024  # diagnostics kept from the sandbox's stderr
