"""``confide probe HOST:PORT``: one gRPC health check, for container probes.

Exit status 0 when the server answers SERVING, 3 otherwise (NOT_SERVING,
unreachable, TLS refused, a service name it does not host), with one line
saying which; docs/operations.md shows it as a Kubernetes exec probe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import DataDir, fail
from ._exit import SERVER, USAGE

__all__ = ["probe"]


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise fail(f"cannot read the {what} {path}: {e.strerror}", USAGE) from None


def probe(
    address: Annotated[str, typer.Argument(help="HOST:PORT of a confide gRPC server.")],
    service: Annotated[str, typer.Option(
        help="Service name to check (full gRPC name); empty: the server as a whole.")] = "",
    ca: Annotated[Path | None, typer.Option(
        help="Certificate to trust (default: api-cert.pem in --data-dir).")] = None,
    data_dir: DataDir = Path("confide-data"),
    server_name: Annotated[str, typer.Option(
        help="Name to check the certificate against (one of the server's --server-name).",
    )] = "localhost",
    cert: Annotated[Path | None, typer.Option(
        help="Client certificate (PEM), for mutual-TLS ports.")] = None,
    key: Annotated[Path | None, typer.Option(
        help="Its private key (PEM file; never on argv).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer.")] = 3.0,
) -> None:
    """Ask a server's grpc.health.v1 whether it is serving (exit 0) or not (exit 3)."""
    from ..client import ProbeError, health_status

    if (cert is None) != (key is None):
        raise fail("--cert and --key go together", USAGE)
    ca_pem = _read(ca if ca is not None else data_dir / "api-cert.pem", "certificate to trust")
    pair = (_read(key, "key"), _read(cert, "certificate")) if cert and key else None
    try:
        status = health_status(address, ca_pem, service=service, server_name=server_name,
                               client_pair=pair, timeout_s=timeout)
    except (ProbeError, ValueError) as e:
        raise fail(f"not serving: {e}", SERVER) from None
    line = f"{address} {service or '(server)'}: {status}"
    if status != "SERVING":
        raise fail(line, SERVER)
    typer.echo(line)
