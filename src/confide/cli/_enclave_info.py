"""``confide enclave-info generate|sign|verify``: the auditors' tools for enclave_info.toml.

Teaclave's ``teaclave_cli sign/verify``: RSA PKCS#1 v1.5 SHA-256 over the raw bytes.
The attestation package is imported when a command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ._common import console, err

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Auditors' tools for enclave_info.toml.")
_SERVICES = ("access_control", "authentication", "execution", "frontend", "management",
             "scheduler", "storage")


@app.command("generate")
def enclave_info_generate(
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    mr_enclave: Annotated[str | None, typer.Option(help="MRENCLAVE (hex).")] = None,
    mr_signer: Annotated[str | None, typer.Option(help="MRSIGNER (hex).")] = None,
    sim_data_dir: Annotated[Path | None, typer.Option(
        help="Take the measurements of the sim node of this data dir (sim only).")] = None,
    service: Annotated[list[str] | None, typer.Option(
        help="Service to list (repeatable); default: Teaclave's seven.")] = None,
) -> None:
    """Write enclave_info.toml listing the given measurements for each service."""
    from ..attestation import SIM_WARNING, AttestationError, generate_enclave_info

    if sim_data_dir is not None:
        from ..attestation.sim import node_sim_attester

        err.print(f"[yellow]{SIM_WARNING}[/]")
        entry = node_sim_attester(sim_data_dir / "sim-attester").measurements
    elif mr_enclave and mr_signer:
        entry = {"mr_enclave": mr_enclave.lower(), "mr_signer": mr_signer.lower()}
    else:
        err.print("give --mr-enclave and --mr-signer, or --sim-data-dir")
        raise typer.Exit(2)
    try:
        raw = generate_enclave_info({s: entry for s in (service or _SERVICES)})
    except AttestationError as e:
        err.print(f"[red]{e}[/]")
        raise typer.Exit(2) from e
    output.write_bytes(raw)
    console.print(f"wrote {output}")


@app.command("sign")
def enclave_info_sign(
    key: Annotated[Path, typer.Option("--key", "-k", help="Auditor's RSA private key (PEM).")],
    input: Annotated[Path, typer.Option("--input", "-i", help="enclave_info.toml")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Signature (.sign.sha256).")],
) -> None:
    """Sign enclave_info.toml (RSA PKCS#1 v1.5 SHA-256 over the raw bytes)."""
    from ..attestation import sign_enclave_info

    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    if not isinstance(private, rsa.RSAPrivateKey):
        err.print("[red]the auditor key must be an RSA private key[/]")
        raise typer.Exit(2)
    output.write_bytes(sign_enclave_info(input.read_bytes(), private))
    console.print(f"wrote {output}")


@app.command("verify")
def enclave_info_verify(
    input: Annotated[Path, typer.Option("--input", "-i", help="enclave_info.toml")],
    public_key: Annotated[list[Path], typer.Option(
        "--public-key", "-p", help="Auditor public key (PEM); repeatable.")],
    signature: Annotated[list[Path], typer.Option(
        "--signature", "-s", help="Signature file; repeatable.")],
    threshold: int = 1,
) -> None:
    """Verify auditors' signatures over enclave_info.toml."""
    from ..attestation import AttestationError, verify_enclave_info

    keys = []
    for path in public_key:
        key = serialization.load_pem_public_key(path.read_bytes())
        if not isinstance(key, rsa.RSAPublicKey):
            err.print(f"[red]{path} is not an RSA public key[/]")
            raise typer.Exit(2)
        keys.append(key)
    try:
        info = verify_enclave_info(input.read_bytes(), [s.read_bytes() for s in signature], keys,
                                   threshold)
    except AttestationError as e:
        err.print(f"[red]NOT verified[/]: {e}")
        raise typer.Exit(1) from e
    console.print(f"[green]verified[/]: {len(signature)} signature(s), threshold {threshold}; "
                  f"services: {', '.join(sorted(info.services))}")
