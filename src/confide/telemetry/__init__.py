"""Operating confide: Prometheus metrics and structured logs (docs/operations.md).

The metric objects live in :mod:`confide.telemetry._metrics` (one place, every
name); code records with them directly. This package's surface is what the
server wires: the registry, the endpoint, the worker-metrics merge, logging.
"""

from ._exposition import (
    MetricsAddressError,
    MetricsEndpoint,
    WorkerMetrics,
    parse_metrics_address,
    prepare_worker_metrics_dir,
    worker_environment,
    worker_exited,
)
from ._labels import OTHER, BoundedLabel, reason_of
from ._logging import (
    LOG_FORMATS,
    REQUEST_ID,
    TASK_ID,
    HumanFormatter,
    JsonFormatter,
    LogFormat,
    configure_logging,
    new_request_id,
    task_context,
    valid_request_id,
)
from ._metrics import REGISTRY

__all__ = [
    "LOG_FORMATS",
    "OTHER",
    "REGISTRY",
    "REQUEST_ID",
    "TASK_ID",
    "BoundedLabel",
    "HumanFormatter",
    "JsonFormatter",
    "LogFormat",
    "MetricsAddressError",
    "MetricsEndpoint",
    "WorkerMetrics",
    "configure_logging",
    "new_request_id",
    "parse_metrics_address",
    "prepare_worker_metrics_dir",
    "reason_of",
    "task_context",
    "valid_request_id",
    "worker_environment",
    "worker_exited",
]
