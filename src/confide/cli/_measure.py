"""``confide measure``: a release's expected attested identity, for auditors.

The logic is :func:`confide.attestation.measurement.measure_release`; this
module only parses options and prints. ``--enclave-info PACKAGING`` writes the
``enclave_info.toml`` an auditor then signs (``confide enclave-info sign``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from rich.console import Console
from rich.table import Table

from ..attestation import generate_enclave_info
from ..attestation.measurement import PACKAGINGS, ReleaseMeasurement, measure_release

__all__ = ["measure"]

console = Console()
err = Console(stderr=True)
_SERVICES = ("access_control", "authentication", "execution", "frontend", "management",
             "scheduler", "storage")


def _public_key_der(path: Path) -> bytes:
    """DER SPKI of a PEM public key, or of the public half of a PEM private key."""
    data = path.read_bytes()
    try:
        public = serialization.load_pem_public_key(data)
    except ValueError:
        try:
            public = serialization.load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError) as e:
            raise typer.BadParameter(f"{path}: not a PEM public or private key") from e
    return public.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)


def _defines(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"-D {item!r}: expected name=value")
        out[name] = value
    return out


def _print(result: ReleaseMeasurement) -> None:
    console.print(f"release: {result.package_root}")
    for p in result.packagings:
        table = Table(title=f"{p.packaging} ({'complete' if p.complete else 'partial'})",
                      show_header=False)
        table.add_column("key", no_wrap=True)
        table.add_column("value", overflow="fold")  # never elide a digit an auditor compares
        for key, value in p.enclave_info.items():
            table.add_row(key, value)
        for key, why in p.missing.items():
            table.add_row(key, f"[yellow]not computed: {why}[/]")
        for key, value in p.artifacts.items():
            table.add_row(f"({key})", value)
        console.print(table)


def measure(
    package_root: Annotated[Path | None, typer.Option(
        help="The confide package directory to measure (default: the installed one).")] = None,
    sim_signer: Annotated[Path | None, typer.Option(
        help="sim: the node's sim signing key (PEM public or private key) for mr_signer.")
    ] = None,
    gramine_template: Annotated[Path | None, typer.Option(
        help="gramine-sgx: deploy/gramine/confide.manifest.template.")] = None,
    define: Annotated[list[str] | None, typer.Option(
        "-D", "--define", help="gramine-sgx: a template variable, name=value (repeatable).")
    ] = None,
    gramine_signer: Annotated[Path | None, typer.Option(
        help="gramine-sgx: the enclave signing key (PEM, RSA-3072, e = 3) for mr_signer.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    enclave_info: Annotated[str | None, typer.Option(
        help=f"Write enclave_info.toml for this packaging ({', '.join(PACKAGINGS)}).")] = None,
    output: Annotated[Path, typer.Option("--output", "-o")] = Path("enclave_info.toml"),
) -> None:
    """Compute what a release's attested identity should be, per TEE packaging."""
    signer = None
    if gramine_signer is not None:
        key = serialization.load_der_public_key(_public_key_der(gramine_signer))
        if not isinstance(key, rsa.RSAPublicKey):
            raise typer.BadParameter("--gramine-signer: not an RSA key")
        signer = key
    template = gramine_template.read_text() if gramine_template is not None else None
    try:
        result = measure_release(
            package_root, sim_signer_der=_public_key_der(sim_signer) if sim_signer else None,
            gramine_template=template, gramine_variables=_defines(define or []) if template
            else None, gramine_signer=signer)
    except ValueError as e:
        err.print(f"[red]{e}[/]")
        raise typer.Exit(2) from e
    if as_json:
        console.print_json(json.dumps({
            "package_root": str(result.package_root),
            "packagings": [{"packaging": p.packaging, "enclave_info": dict(p.enclave_info),
                            "missing": dict(p.missing), "artifacts": dict(p.artifacts)}
                           for p in result.packagings]}))
    else:
        _print(result)
    if enclave_info is not None:
        if enclave_info not in PACKAGINGS:
            err.print(f"[red]--enclave-info: unknown packaging {enclave_info!r}[/]")
            raise typer.Exit(2)
        chosen = result.get(enclave_info)
        if not chosen.complete:
            err.print(f"[red]{enclave_info}: cannot write enclave_info, not computed: "
                      f"{', '.join(chosen.missing)}[/]")
            raise typer.Exit(1)
        output.write_bytes(generate_enclave_info({s: chosen.enclave_info for s in _SERVICES}))
        err.print(f"wrote {output}: sign it with `confide enclave-info sign`")

