"""``confide worker``: execution workers on a host of their own (docs/operations.md)."""

from __future__ import annotations

import signal
import socket
from pathlib import Path
from typing import Annotated

import typer

from ._common import err
from ._config import ConfigOption, load_or_exit

__all__ = ["worker"]


def worker(
    scheduler: Annotated[str, typer.Option(
        help="HOST:PORT of the scheduler's worker endpoint; several scheduler nodes as "
             "IP:PORT,IP:PORT (the worker uses the first that answers and moves on when "
             "it goes away).")],
    keys: Annotated[str, typer.Option(
        help="HOST:PORT[,HOST:PORT...] of the key services to enrol through, tried in "
             "order.")],
    sim_attester: Annotated[Path, typer.Option(
        help="A copy of the platform's <data-dir>/sim-attester (sim only: it stands in for "
             "the hardware vendor's PKI).")],
    name: Annotated[str | None, typer.Option(
        help="This host's name; executor ids are NAME/executor-<uuid> (default: the host "
             "name).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    slots: Annotated[int, typer.Option(help="Tasks each worker runs at once.")] = 4,
    python_prestart: Annotated[int | None, typer.Option(
        help="Python sandboxes each worker keeps started (default: one per slot).")] = None,
    log_format: Annotated[str, typer.Option(help="human or json.")] = "human",
    config: ConfigOption = None,
) -> None:
    """Run execution workers that join a platform over the network (enrol, then pull)."""
    from ..node import WorkerHost, WorkerHostConfig, WorkerHostError
    from ..telemetry import LOG_FORMATS, configure_logging

    settings = load_or_exit(config)
    if log_format not in LOG_FORMATS:
        err.print(f"[red]cannot start:[/] --log-format must be human or json, not {log_format!r}")
        raise typer.Exit(2)
    configure_logging("json" if log_format == "json" else "human", "INFO", process="worker-host")
    try:
        host = WorkerHost(WorkerHostConfig(
            scheduler=scheduler, key_service=keys, sim_attester_dir=sim_attester.resolve(),
            name=name or socket.gethostname(), workers=workers, slots=slots,
            python_prestart=python_prestart, log_format=log_format, limits=settings.limits))
        host.start()
    except WorkerHostError as e:
        err.print(f"[red]cannot start:[/] {e}")
        raise typer.Exit(2) from e
    signal.signal(signal.SIGTERM, lambda *_: host.stop())
    signal.signal(signal.SIGINT, lambda *_: host.stop())
    err.print(f"{workers} workers joining through {keys}, pulling from {scheduler}")
    host.wait()
