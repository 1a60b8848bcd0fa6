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
    # A scheduler node's clock may differ this much from the PostgreSQL server's
    # (services/scheduler/_agreement.py): beyond it the node does not start, or
    # its scheduler turns NOT_SERVING.
    max_clock_skew_s: float = 1.0
    max_rejection_reason_chars: int = 4096  # confide.v1 RejectTask
    # --- retries (services/_idempotency.py): a create's idempotency-key header ---
    max_idempotency_key_chars: int = 128
    idempotency_ttl_s: float = 86_400.0  # a key answers its retries this long
    # --- logins (services/authentication/_throttle.py; docs/security.md) ---
    # Failed logins a user id may have before each further one locks it for
    # login_backoff_base_s, doubled per failure, at most login_max_lockout_s.
    login_user_free_failures: int = 5
    # The same per source address (IPv6: per /64); higher, as many users may
    # share an address (NAT, a proxy: then see docs/security.md).
    login_address_free_failures: int = 20
    login_backoff_base_s: float = 1.0
    login_max_lockout_s: float = 900.0
    login_forget_after_s: float = 3600.0  # failures kept after the last one
    login_throttle_max_entries: int = 100_000  # keys per table; least recent evicted
    # --- execution: what one task may make, the same for every executor ---
    # (enforced by the worker while the bytes are written: executors/_caps.py,
    # execution/_staging.py; a task past one fails naming the field; docs/operations.md)
    max_return_value_bytes: int = 1 * MiB
    max_input_bytes: int = 512 * MiB  # all inputs staged for one task (bytes received)
    max_output_file_bytes: int = 256 * MiB  # one output file (plaintext)
    max_output_bytes: int = 512 * MiB  # all output bytes of one task (re-creating refunds none)
    max_log_lines: int = 10_000  # captured save_log lines per task
    max_log_bytes: int = 1 * MiB  # captured save_log text per task (UTF-8)
    # Everything one task has in the worker's private (memory-backed) area at once:
    # staged inputs, their plaintext, outputs and each output's sealed copy.
    max_task_area_bytes: int = 2 * GiB
    # --- attestation (evidence, collateral, enclave_info; confide.attestation) ---
    max_quote_bytes: int = 64 * 1024  # SGX/TDX quote incl. PEM chain (real: 4.6-5 KB)
    max_collateral_bytes: int = 1 * MiB  # DCAP collateral JSON / SNP chain (real: 14-16 KB)
    max_cert_chain_depth: int = 5  # certificates in an embedded or collateral chain
    max_enclave_info_bytes: int = 256 * 1024  # enclave_info.toml
    max_enclave_info_signatures: int = 64  # auditor signatures per enclave_info
    # --- WebAssembly executor (spec §5.8; docs/wasm.md) ---
    # Native stack for wasm frames; the number Teaclave gives WAMR (163 840 B).
    wasm_max_stack_bytes: int = 160 * 1024
    # Total linear memory of one instance, the argv area included. Teaclave's
    # WAMR gets the module's own memory plus a 20 MiB instance heap.
    wasm_max_memory_bytes: int = 64 * MiB
    # Wall-clock budget of one run (instantiation + entrypoint).
    wasm_max_run_seconds: float = 300.0
    # Largest transfer of a single teaclave_read_file / teaclave_write_file
    # call (a call may move fewer bytes than asked; spec §5.8).
    wasm_max_io_chunk_bytes: int = 1 * MiB
    # Compiled-module cache, keyed by the payload's SHA-256.
    wasm_module_cache_entries: int = 32
    wasm_module_cache_bytes: int = 64 * MiB  # sum of cached payload sizes
    # --- attested TLS, report service, enrolment (attestation/tls/, keys/) ---
    max_certificate_bytes: int = 64 * 1024  # a peer's DER certificate (Teaclave's is ~9 KB)
    max_attestation_extension_bytes: int = 48 * 1024  # one attestation extension value
    max_report_bytes: int = 16 * 1024  # IAS-v4 report JSON inside the Teaclave extension
    max_report_signature_bytes: int = 1024  # RSA-8192 signatures are 1024 bytes
    max_report_chain_certs: int = 4  # certs[] in the Teaclave extension (signing + intermediates)
    max_ratls_quote_bytes: int = 32 * 1024  # quote inside 2.23.133.5.4.9
    max_ratls_collateral_bytes: int = 64 * 1024  # collateral inside 2.23.133.5.4.2
    max_report_request_bytes: int = 1 * MiB  # POST body of the report service (Teaclave: 1 MiB)
    max_enrolment_services: int = 16  # services one node may ask to host
    max_service_name_chars: int = 64
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
    # --- crypto (src/confide/crypto: file formats, untrusted ciphertext) ---
    # Ciphertext bytes decrypt_stream/compute_cmac accept, any schema.
    max_encrypted_file_bytes: int = 1024 * GiB
    # teaclave-file-128 plaintext size (read: the size field; write: the input).
    # The writer keeps 16 bytes per 4 KiB node in memory, so 16 GiB costs 64 MiB.
    max_teaclave_file_bytes: int = 16 * GiB
    # confide-stream-256 segment size field in the (untrusted) header.
    max_stream_segment_bytes: int = 16 * MiB
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
    max_blob_url_ttl_s: int = 7 * 24 * 3600  # lifetime of a presigned URL issued by the RPC
    # --- python sandbox (executors/python.py, executors/_sandbox/) ---
    python_wall_seconds: float = 60.0  # wall clock per run, enforced by the worker
    python_cpu_seconds: int = 60  # RLIMIT_CPU (soft; hard = soft + 1)
    # Memory budget of one run: its /tmp tmpfs (python_tmp_bytes) plus the function
    # process's RLIMIT_AS (the rest); no other tmpfs in the sandbox is writable.
    python_memory_bytes: int = 2048 * MiB
    python_max_threads: int = 32  # RLIMIT_NPROC, on the sandbox's own host uid
    python_max_open_files: int = 64  # RLIMIT_NOFILE
    python_max_file_bytes: int = 16 * MiB  # RLIMIT_FSIZE (files in the private /tmp)
    python_tmp_bytes: int = 32 * MiB  # size of the private tmpfs /tmp
    # (inputs, outputs and logs: max_input_bytes, max_output_*, max_log_* above)
    python_max_log_line_chars: int = 4096  # one captured log line (longer ones are cut)
    python_max_frame_bytes: int = 1 * MiB  # one sandbox -> worker protocol frame
    python_max_stderr_bytes: int = 64 * 1024  # diagnostics kept from the sandbox's stderr
    # Pre-started sandboxes one PythonExecutor keeps waiting (each ~40 MiB of RSS
    # with numpy imported; each still runs one task, then is replaced).
    python_max_prestarted: int = 4
    # Host uids (and the same gids) given to sandboxes, one per live sandbox
    # (docs/sandbox.md). The range must hold no account, no subordinate range
    # (/etc/subuid) and not the worker's ids; the default lies above the range
    # systemd gives containers (up to 0x6FFFFFFF) and below its foreign range.
    python_sandbox_uid_base: int = 0x70000000
    python_sandbox_uid_count: int = 65536
    # --- confide console (confide.console: a user's local web console) ---
    console_max_form_bytes: int = 64 * 1024  # one form POST (reject reason, audit query)
    console_max_upload_bytes: int = 4 * GiB  # one file uploaded through the console
    console_max_sessions: int = 32  # browser sessions one launch keeps (oldest dropped)
