"""``confide serve``: the all-in-one server (every service, the database, the worker pool)."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from ._common import DataDir, err
from ._config import ConfigOption, load_or_exit

__all__ = ["serve"]


def serve(
    data_dir: DataDir = Path("confide-data"),
    host: Annotated[str, typer.Option(help="Address the client APIs listen on.")] = "127.0.0.1",
    authentication_port: int = 7776,
    frontend_port: int = 7777,
    scheduler_port: int = 17780,
    key_service_port: Annotated[int, typer.Option(
        help="Key service (node and worker enrolment), on the internal host.")] = 17781,
    services: Annotated[str | None, typer.Option(
        help="Comma-separated roles this node serves: authentication, frontend, scheduler, "
             "keys. Default: all of them ([server] services).")] = None,
    internal_host: Annotated[str | None, typer.Option(
        help="Address the scheduler and key service listen on (other hosts' workers dial "
             "it). Default: 127.0.0.1 ([server] internal_host).")] = None,
    keys: Annotated[str | None, typer.Option(
        help="HOST:PORT[,HOST:PORT...] of the key services to join through, tried in "
             "order; with the keys role, this node becomes a further key service "
             "([server] key_service).")] = None,
    attestation_service_port: Annotated[int | None, typer.Option(
        help="Serve this keys node's attestation report service on the internal host at "
             "this port (0: any free port), for other nodes' --attestation-service. Off by "
             "default.")] = None,
    attestation_service: Annotated[str | None, typer.Option(
        help="HOST:PORT of the keys node's attestation report service: this node's "
             "certificates are endorsed there, so clients attest it with the same trust "
             "files as the keys node (needs --attestation-service-ca).")] = None,
    attestation_service_ca: Annotated[Path | None, typer.Option(
        help="That service's AS root: a copy of the keys node's as-root-ca.pem.")] = None,
    sim_attester: Annotated[Path | None, typer.Option(
        help="Sim attester state (default <data-dir>/sim-attester); on a node that joins, a "
             "copy of the keys node's (sim only).")] = None,
    blob_port: Annotated[int, typer.Option(help="Blob store port (0: any free port).")] = 7778,
    workers: Annotated[int, typer.Option(help="Execution worker processes.")] = 2,
    worker_slots: Annotated[int, typer.Option(help="Tasks each worker runs at once.")] = 4,
    python_prestart: Annotated[int | None, typer.Option(
        help="Python sandboxes each worker keeps started ahead of its tasks (each still runs "
             "one task). Default: one per slot, at most 4; 0: start one per task.")] = None,
    database_url: Annotated[str | None, typer.Option(
        envvar="CONFIDE_DATABASE_URL",
        help="SQLAlchemy URL; default SQLite in the data dir.")] = None,
    admin_password: Annotated[str | None, typer.Option(
        envvar="CONFIDE_ADMIN_PASSWORD", help="Password of 'admin' when it is created.")] = None,
    executor_timeout: float = 30.0,
    tee: str = "sim",
    allow_loopback_port: Annotated[list[int] | None, typer.Option(
        help="Let workers fetch/store task files on 127.0.0.1/::1 at this port too (besides "
             "the blob store's). Repeatable. Off by default: every opened port is reachable "
             "by any task's URLs.")] = None,
    file_root: Annotated[list[Path] | None, typer.Option(
        help="Let task files use file:// URLs inside this directory. Repeatable. Off by "
             "default.")] = None,
    metrics_address: Annotated[str | None, typer.Option(
        help="Serve Prometheus metrics at HOST:PORT/metrics (e.g. 127.0.0.1:9464). Off by "
             "default ([server] metrics_address).")] = None,
    log_format: Annotated[str | None, typer.Option(
        help="human or json (one line per event). Default: human ([server] log_format).")
    ] = None,
    server_name: Annotated[list[str] | None, typer.Option(
        help="DNS name clients reach the APIs by (the API certificate names it). Repeatable; "
             "default: localhost ([server] server_names).")] = None,
    shutdown_grace: Annotated[float | None, typer.Option(
        help="Seconds running tasks may take to finish after SIGTERM before they fail. "
             "Default: 30 ([server] shutdown_grace_s).")] = None,
    config: ConfigOption = None,
) -> None:
    """Run the all-in-one server (every service, the database, the worker pool)."""
    from ..node import ConfigError, Platform, ServerConfig
    from ..telemetry import LOG_FORMATS, configure_logging

    settings = load_or_exit(config)
    ops = settings.server  # [server]; a flag given on the command line wins

    source = "the command line" if log_format is not None else "server.log_format"
    log_format = ops.log_format if log_format is None else log_format
    if log_format not in LOG_FORMATS:
        err.print(f"[red]cannot start:[/] --log-format must be human or json, not "
                  f"{log_format!r} (from {source})")
        raise typer.Exit(2)
    configure_logging("json" if log_format == "json" else "human", "INFO", process="server")
    human = log_format == "human"  # json: standard error carries JSON lines only
    if tee == "sim" and human:
        err.print("[bold yellow]sim TEE: NO protection against the operator. Development only.[/]")
    try:
        platform = Platform(ServerConfig(
            data_dir=data_dir, host=host, authentication_port=authentication_port,
            services=ops.services if services is None else tuple(
                r.strip() for r in services.split(",") if r.strip()),
            internal_host=ops.internal_host if internal_host is None else internal_host,
            key_service_address=ops.key_service if keys is None else keys,
            sim_attester_dir=sim_attester,
            frontend_port=frontend_port, scheduler_port=scheduler_port,
            key_service_port=key_service_port, blob_port=blob_port,
            attestation_service_port=attestation_service_port,
            attestation_service_address=attestation_service,
            attestation_service_ca=attestation_service_ca,
            workers=workers, worker_slots=worker_slots, worker_python_prestart=python_prestart,
            database_url=database_url, admin_password=admin_password, tee=tee,
            executor_timeout_s=executor_timeout,
            file_agent_loopback_ports=tuple(allow_loopback_port or ()),
            file_roots=tuple(str(p.resolve()) for p in file_root or ()),
            metrics_address=ops.metrics_address if metrics_address is None else metrics_address,
            log_format=log_format,
            server_names=tuple(server_name) if server_name else ops.server_names,
            health_check_s=ops.health_check_s,
            shutdown_grace_s=ops.shutdown_grace_s if shutdown_grace is None else shutdown_grace,
            key_rotate_after=settings.keys.rotate_after,
            key_check_s=settings.keys.check_interval_s,
            limits=settings.limits))
        # The handlers only count the signal: the drain runs below, on the main
        # thread, and a second signal during it ends the grace period
        # (Platform.stop). Installed before the workers start, so a SIGTERM that
        # comes during the start-up drains too instead of orphaning them.
        signal.signal(signal.SIGTERM, lambda *_: platform.request_stop())
        signal.signal(signal.SIGINT, lambda *_: platform.request_stop())
        platform.start()
    except ConfigError as e:
        if human:
            err.print(f"[red]cannot start:[/] {e}")
        else:
            logging.getLogger("confide.server").error("cannot start: %s", e)
        raise typer.Exit(2) from e
    if human and not platform.roles & {"authentication", "frontend"}:
        err.print(f"serving {', '.join(sorted(platform.roles))}")
    elif human:
        err.print(f"serving; clients attest with the trust files in {data_dir} "
                  f"(confide user login -d {data_dir}) or pin {data_dir / 'api-cert.pem'}")
    platform.wait()
    platform.stop(platform.config.shutdown_grace_s)
