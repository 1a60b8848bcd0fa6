"""The metrics endpoint of a process, and the worker processes' metrics in it.

``confide serve --metrics-address HOST:PORT`` serves ``/metrics`` (Prometheus
text format) over plain HTTP from a thread of the server process. Metrics hold
counts and durations only (no ids, no secrets), but they reveal activity:
keep the address on loopback or a monitoring network.

Workers are separate processes. The supervisor gives each one
``PROMETHEUS_MULTIPROC_DIR`` (:func:`worker_environment`), so prometheus_client
records their metrics in per-process files there; :class:`WorkerMetrics` merges
the files at every scrape (counters and histograms summed over every worker
that ever ran, the slot gauges over the live ones) and the supervisor calls
:func:`worker_exited` for each worker that ends.
"""

from __future__ import annotations

import ipaddress
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector, CollectorRegistry

from ._metrics import WORKER_METRIC_PREFIX

__all__ = [
    "MetricsAddressError",
    "MetricsEndpoint",
    "WorkerMetrics",
    "parse_metrics_address",
    "prepare_worker_metrics_dir",
    "worker_environment",
    "worker_exited",
]

_log = logging.getLogger("confide.telemetry")
_ENV = "PROMETHEUS_MULTIPROC_DIR"


class MetricsAddressError(ValueError):
    """``--metrics-address`` is not ``HOST:PORT``."""


def parse_metrics_address(address: str) -> tuple[str, int]:
    """``127.0.0.1:9464``, ``[::1]:9464``, ``localhost:0`` → (host, port).

    Raises:
        MetricsAddressError: no port, a port outside 0..65535, or an empty host.
    """
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise MetricsAddressError(f"metrics address must be HOST:PORT, not {address!r}")
    port = int(port_text)
    if port > 65535:
        raise MetricsAddressError(f"metrics port out of range: {port}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError as e:
            raise MetricsAddressError(f"not an IPv6 address: {host!r}") from e
    return host, port


@dataclass
class MetricsEndpoint:
    """A running ``/metrics`` endpoint; :meth:`stop` closes it."""

    host: str
    port: int
    _server: WSGIServer

    @classmethod
    def start(cls, address: str, registry: CollectorRegistry) -> MetricsEndpoint:
        """Serve ``registry`` at ``address`` (port 0: any free port).

        Raises:
            MetricsAddressError: a malformed address.
            OSError: the address cannot be bound.
        """
        host, port = parse_metrics_address(address)
        server, _thread = start_http_server(port, addr=host, registry=registry)
        endpoint = cls(host, int(server.server_port), server)
        if not _is_loopback(host):
            _log.warning("metrics served on a non-loopback address %s:%d (plain HTTP, no "
                         "authentication)", host, endpoint.port)
        return endpoint

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def prepare_worker_metrics_dir(path: Path) -> Path:
    """Create (or empty) the directory the workers record their metrics in."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(mode=0o700, parents=True)
    return path


def worker_environment(path: Path) -> dict[str, str]:
    """What a worker's environment needs for its metrics to reach the endpoint."""
    return {_ENV: str(path)}


def worker_exited(path: Path, pid: int) -> None:
    """Drop a dead worker's live gauges (its counters stay in the totals)."""
    mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]


class WorkerMetrics(Collector):
    """The ``confide_worker_*`` metrics of every worker, merged from their files."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def collect(self) -> Iterator[Metric]:
        if not self._path.is_dir():
            return
        # A worker also records (zeros of) the server's metrics it imports; only
        # its own family is merged here, so no name is exported twice.
        merged = MultiProcessCollector(None, str(self._path))  # type: ignore[no-untyped-call]
        for metric in merged.collect():  # type: ignore[no-untyped-call]
            if metric.name.startswith(WORKER_METRIC_PREFIX):
                yield metric

