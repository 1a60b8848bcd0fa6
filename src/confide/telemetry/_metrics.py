"""Every Prometheus metric confide exports, in one place (docs/operations.md lists them).

Names follow Prometheus' conventions: a ``confide_`` prefix, base units
(``_seconds``, ``_bytes``), ``_total`` for counters. Labels come from fixed
sets or pass through a :class:`~confide.telemetry._labels.BoundedLabel`: no
user, task, file or executor id is ever a label.

Metrics named ``confide_worker_*`` are recorded by the execution worker
processes. A worker started by ``confide serve`` with metrics on writes them
to per-process files (prometheus_client's multiprocess mode, enabled by the
supervisor through ``PROMETHEUS_MULTIPROC_DIR`` in the worker's environment
only), and the server's endpoint merges them (:mod:`._exposition`). They
live in their own :data:`WORKER_REGISTRY`, which no endpoint serves directly:
the server's endpoint serves :data:`REGISTRY` (its own metrics, in memory)
plus that merge.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from .. import __version__
from ._labels import BoundedLabel

__all__ = [
    "ATTESTATION_APPRAISALS",
    "ATTESTATION_EVIDENCE_AGE",
    "ATTESTATION_FAILURES",
    "DB_TRANSACTION_SECONDS",
    "HEALTH_CHECK_OK",
    "LOGIN_FAILURES",
    "REGISTRY",
    "RPC_HANDLED",
    "RPC_HANDLING_SECONDS",
    "SCHEDULER_EXECUTORS",
    "SCHEDULER_QUEUE_DEPTH",
    "SCHEDULER_QUEUE_WAIT_SECONDS",
    "SUPERVISOR_WORKER_EXITS",
    "SUPERVISOR_WORKER_PROCESSES",
    "TASKS",
    "TASKS_COMPLETED",
    "TASK_RUN_SECONDS",
    "WORKER_ENROLMENTS",
    "WORKER_METRIC_PREFIX",
    "WORKER_REGISTRY",
    "WORKER_SLOTS",
    "WORKER_STAGED_BYTES",
    "WORKER_TASKS",
    "WORKER_TASK_SECONDS",
    "executor_label",
    "reason_label",
]

# ``*_created`` series double every counter and histogram for a start time
# that process_start_time_seconds already gives.
disable_created_metrics()  # type: ignore[no-untyped-call]

#: The server process's metrics; what ``--metrics-address`` serves (plus the workers').
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
#: The worker processes' metrics (module docstring).
WORKER_REGISTRY = CollectorRegistry()

#: Metrics with this prefix come from the worker processes (module docstring).
WORKER_METRIC_PREFIX = "confide_worker_"

#: Task executor names (``builtin``, ``mesapy``, ``wamr``: validated at CreateTask).
executor_label = BoundedLabel(cap=8)
#: Refusal reasons: short identifiers from the code (``quote-signature-invalid``, …).
reason_label = BoundedLabel(cap=64)

_RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                5.0, 10.0, 30.0, 60.0)
_TASK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
                 900.0, 3600.0)
_DB_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
               1.0, 5.0)

Info("confide_build", "The confide version serving.", registry=REGISTRY).info(
    {"version": __version__})

# -- gRPC (the interceptor of every server; rpc/_server.py) --------------------
RPC_HANDLED = Counter(
    "confide_grpc_server_handled_total",
    "RPCs completed, by service, method and status code.",
    ["grpc_service", "grpc_method", "grpc_code"], registry=REGISTRY)
RPC_HANDLING_SECONDS = Histogram(
    "confide_grpc_server_handling_seconds",
    "Time from a request's arrival at the handler to its answer (long polls included).",
    ["grpc_service", "grpc_method"], buckets=_RPC_BUCKETS, registry=REGISTRY)

# -- tasks and the scheduler ---------------------------------------------------
TASKS = Gauge(
    "confide_tasks", "Tasks in the database by state (refreshed by the health check).",
    ["state"], registry=REGISTRY)
TASKS_COMPLETED = Counter(
    "confide_tasks_completed_total",
    "Tasks that left Running: outcome ok (Finished, Ok result), error (Finished with the "
    "function's error), failed (executor lost or timed out).",
    ["executor", "outcome"], registry=REGISTRY)
SCHEDULER_QUEUE_DEPTH = Gauge(
    "confide_scheduler_queue_depth", "Staged tasks waiting for an executor.", registry=REGISTRY)
SCHEDULER_QUEUE_WAIT_SECONDS = Histogram(
    "confide_scheduler_queue_wait_seconds", "Time a task waited Staged before an executor took it.",
    ["executor"], buckets=_TASK_BUCKETS, registry=REGISTRY)
TASK_RUN_SECONDS = Histogram(
    "confide_task_run_seconds",
    "Time from an executor taking a task to its result (staging, run, sealing).",
    ["executor", "outcome"], buckets=_TASK_BUCKETS, registry=REGISTRY)
SCHEDULER_EXECUTORS = Gauge(
    "confide_scheduler_executors",
    "Executors heard from within the executor timeout (enrolled, pulling or heart-beating).",
    registry=REGISTRY)

# -- attestation, authentication, database -------------------------------------
ATTESTATION_APPRAISALS = Counter(
    "confide_attestation_appraisals_total",
    "Evidence appraisals: purpose enrolment (a node's quote at the key service) or "
    "certificate (this node's own quote, endorsed for its API certificate); result ok|refused.",
    ["purpose", "result"], registry=REGISTRY)
ATTESTATION_FAILURES = Counter(
    "confide_attestation_failures_total", "Refused appraisals by purpose and reason.",
    ["purpose", "reason"], registry=REGISTRY)
ATTESTATION_EVIDENCE_AGE = Gauge(
    "confide_attestation_evidence_age_seconds",
    "Age of the evidence in the API certificate being served.", registry=REGISTRY)
LOGIN_FAILURES = Counter(
    "confide_login_failures_total",
    "Refused UserLogin calls by reason (malformed, unknown_user, bad_password, throttled, "
    "throttle_unavailable).",
    ["reason"], registry=REGISTRY)
DB_TRANSACTION_SECONDS = Histogram(
    "confide_db_transaction_seconds", "Database transactions from BEGIN to COMMIT/ROLLBACK.",
    ["kind"], buckets=_DB_BUCKETS, registry=REGISTRY)
HEALTH_CHECK_OK = Gauge(
    "confide_health_check_ok",
    "Last result of each readiness check (1 passed, 0 failed): database, attestation, workers.",
    ["check"], registry=REGISTRY)

# -- the worker supervisor (server process) -------------------------------------
SUPERVISOR_WORKER_PROCESSES = Gauge(
    "confide_supervisor_worker_processes", "Execution worker processes alive.",
    registry=REGISTRY)
SUPERVISOR_WORKER_EXITS = Counter(
    "confide_supervisor_worker_exits_total", "Worker processes that exited unexpectedly.",
    registry=REGISTRY)

# -- recorded by the worker processes (module docstring) -------------------------
WORKER_SLOTS = Gauge(
    "confide_worker_slots", "Task slots of the live workers: busy or free.", ["state"],
    multiprocess_mode="livesum", registry=WORKER_REGISTRY)
WORKER_TASKS = Counter(
    "confide_worker_tasks_total",
    "Tasks a worker ran, by executor and outcome (ok, error, canceled, crashed).",
    ["executor", "outcome"], registry=WORKER_REGISTRY)
WORKER_TASK_SECONDS = Histogram(
    "confide_worker_task_seconds", "Time a worker spent on one task (staging, run, sealing).",
    ["executor"], buckets=_TASK_BUCKETS, registry=WORKER_REGISTRY)
WORKER_STAGED_BYTES = Counter(
    "confide_worker_staged_bytes_total",
    "Ciphertext bytes workers downloaded (in) and uploaded (out) for tasks.",
    ["direction"], registry=WORKER_REGISTRY)
WORKER_ENROLMENTS = Counter(
    "confide_worker_enrolments_total", "Worker enrolments at the key service by result.",
    ["result"], registry=WORKER_REGISTRY)
