"""``confide attestation-service``: the standalone Teaclave-compatible report service.

Runs ``run_attestation_service`` (Teaclave's DCAP reference API): it verifies
quotes with dcap-qvl, against the sim root of a sim attester's state dir or
Intel's root with collateral from a PCCS, and signs IAS-v4-style reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import err

__all__ = ["attestation_service"]


def attestation_service(
    state_dir: Annotated[Path, typer.Option(help="Keys and certificates of the service.")] = Path(
        "confide-as"),
    host: str = "127.0.0.1",
    port: int = 8443,
    tls: Annotated[bool, typer.Option(help="Serve HTTPS with the signing certificate.")] = True,
    sim_state_dir: Annotated[Path | None, typer.Option(
        help="SIM ONLY: trust the sim DCAP root of this sim attester state dir and take "
             "collateral from it.")] = None,
    pccs_url: Annotated[str | None, typer.Option(
        help="Hardware: PCCS/PCS https URL for collateral (Intel SGX root).")] = None,
) -> None:
    """Run the Teaclave-compatible attestation report service (DCAP reference API)."""
    import logging

    from ..attestation import (
        INTEL_SGX_ROOT_CA_DER,
        SIM_WARNING,
        CollateralFetcher,
        UnsafeTrustSimRoot,
        dcap_quote_verifier,
    )
    from ..attestation.sim import SimAttester
    from ..keys import SimSealer
    from ..services.attestation_report import run_attestation_service

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if (sim_state_dir is None) == (pccs_url is None):
        err.print("give exactly one of --sim-state-dir (sim) or --pccs-url (hardware)")
        raise typer.Exit(2)
    err.print("[yellow]the report service's keys are sealed with the sim sealer: run it in a "
              "TEE with a real sealer for production[/]")
    verify = None
    if sim_state_dir is not None:
        err.print(f"[bold yellow]{SIM_WARNING}: trusting the sim root of {sim_state_dir}[/]")
        attester = SimAttester(sim_state_dir, "sgx")
        verify = dcap_quote_verifier(UnsafeTrustSimRoot(attester.root_certificate_der),
                                     lambda _q, now: attester.collateral(now))
    elif pccs_url is not None:
        fetcher = CollateralFetcher(pccs_url, cache_dir=state_dir / "collateral")
        verify = dcap_quote_verifier(INTEL_SGX_ROOT_CA_DER,
                                     lambda q, now: fetcher.get(q, now=now))
    if verify is None:
        raise typer.Exit(2)
    run_attestation_service(state_dir=state_dir, sealer=SimSealer(state_dir / "sealing.key"),
                            verify_quote=verify, host=host, port=port, tls=tls)
