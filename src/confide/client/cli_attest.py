"""Attestation commands: ``confide attest``, ``enclave-info …``, ``attestation-service``.

* ``attest HOST:PORT`` fetches a server's certificate, shows its evidence
  (TEE type, measurements, TCB status, advisories, report data, validity) and
  the verdict of both profiles against the trust files of a data directory.
* ``enclave-info generate|sign|verify`` are the auditors' tools (Teaclave's
  ``teaclave_cli sign/verify``: RSA PKCS#1 v1.5 SHA-256 over the raw bytes).
* ``attestation-service`` runs the standalone Teaclave-compatible attestation
  report service (``run_attestation_service``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from rich.console import Console
from rich.table import Table

from ..attestation import (
    SIM_WARNING,
    AppraisalPolicy,
    AttestationError,
    RaTlsError,
    SgxQuote,
    TrustBundle,
    fetch_unverified_certificate,
    generate_enclave_info,
    parse_quote,
    sign_enclave_info,
    tls_report_data,
    verify_enclave_info,
    verify_ratls_with_policy,
    verify_teaclave_certificate,
)
from ..config import Limits
from ._attested import (
    _ALLOWED_REPORT_STATUSES,
    _RATLS_MAX_EVIDENCE_AGE,
    ServerAttestationError,
    trust_from_bundle,
)

__all__ = ["enclave_info_app", "register"]

console = Console()
err = Console(stderr=True)
enclave_info_app = typer.Typer(no_args_is_help=True,
                               help="Auditors' tools for enclave_info.toml.")
_SERVICES = ("access_control", "authentication", "execution", "frontend", "management",
             "scheduler", "storage")


def _unverified_details(der: bytes, table: Table) -> None:
    """Rows describing the evidence as presented (nothing verified yet)."""
    from ..attestation._ratls_cert import RATLS_EVIDENCE_OID, parse_ratls_evidence
    from ..attestation._teaclave_report import parse_report, parse_teaclave_extension

    limits = Limits()
    cert = x509.load_der_x509_certificate(der)
    table.add_row("certificate", f"sha256 {hashlib.sha256(der).hexdigest()}")
    table.add_row("valid", f"{cert.not_valid_before_utc.isoformat()} → "
                           f"{cert.not_valid_after_utc.isoformat()}")
    try:
        first = next(iter(cert.extensions))
        value = first.value.value if isinstance(first.value, x509.UnrecognizedExtension) else b""
        report = parse_report(parse_teaclave_extension(value, limits).report, limits)
        table.add_row("report", f"id {report.report_id}, version {report.version}, "
                                f"timestamp {report.timestamp}")
        table.add_row("report status", str(report.status))
        table.add_row("report advisories", ", ".join(report.advisories) or "none")
    except (AttestationError, StopIteration, ValueError) as e:
        table.add_row("report", f"[red]unreadable: {e}[/]")
    try:
        ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(RATLS_EVIDENCE_OID))
        raw = ext.value.value if isinstance(ext.value, x509.UnrecognizedExtension) else b""
        quote = parse_quote(parse_ratls_evidence(raw, limits).quote, limits)
        if isinstance(quote, SgxQuote):
            table.add_row("TEE", f"sgx (quote v{quote.header.version})")
            table.add_row("MRENCLAVE", quote.body.mr_enclave.hex())
            table.add_row("MRSIGNER", quote.body.mr_signer.hex())
        else:
            table.add_row("TEE", f"tdx (quote v{quote.header.version})")
            table.add_row("MRTD", quote.body.mr_td.hex())
        table.add_row("debug", "yes" if quote.body.debug else "no")
        table.add_row("report data", quote.body.report_data.hex())
        key = cert.public_key()
        binds = isinstance(key, ec.EllipticCurvePublicKey) and isinstance(
            key.curve, ec.SECP256R1) and quote.body.report_data == tls_report_data(key)
        table.add_row("binds TLS key", "yes (X‖Y)" if binds else "[red]no[/]")
    except (AttestationError, x509.ExtensionNotFound, ValueError) as e:
        table.add_row("RA-TLS evidence", f"[red]unreadable: {e}[/]")


@enclave_info_app.command("generate")
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
    if sim_data_dir is not None:
        from ..attestation._sim import node_sim_attester

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


@enclave_info_app.command("sign")
def enclave_info_sign(
    key: Annotated[Path, typer.Option("--key", "-k", help="Auditor's RSA private key (PEM).")],
    input: Annotated[Path, typer.Option("--input", "-i", help="enclave_info.toml")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Signature (.sign.sha256).")],
) -> None:
    """Sign enclave_info.toml (RSA PKCS#1 v1.5 SHA-256 over the raw bytes)."""
    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    if not isinstance(private, rsa.RSAPrivateKey):
        err.print("[red]the auditor key must be an RSA private key[/]")
        raise typer.Exit(2)
    output.write_bytes(sign_enclave_info(input.read_bytes(), private))
    console.print(f"wrote {output}")


@enclave_info_app.command("verify")
def enclave_info_verify(
    input: Annotated[Path, typer.Option("--input", "-i", help="enclave_info.toml")],
    public_key: Annotated[list[Path], typer.Option(
        "--public-key", "-p", help="Auditor public key (PEM); repeatable.")],
    signature: Annotated[list[Path], typer.Option(
        "--signature", "-s", help="Signature file; repeatable.")],
    threshold: int = 1,
) -> None:
    """Verify auditors' signatures over enclave_info.toml."""
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


def attest(
    endpoint: Annotated[str, typer.Argument(help="HOST:PORT of a confide (or Teaclave) API.")],
    data_dir: Annotated[Path, typer.Option(
        "--data-dir", "-d", envvar="CONFIDE_DATA_DIR",
        help="Trust files: enclave_info.toml, auditors/, as-root-ca.pem[, sim-dcap-root.der]."
    )] = Path("confide-data"),
    service_table: Annotated[str | None, typer.Option(
        help="enclave_info table; default by port (7776 authentication, else frontend).")] = None,
    threshold: int = 1,
) -> None:
    """Show a server's attestation evidence and whether it verifies."""
    host, _, port_text = endpoint.rpartition(":")
    if not host or not port_text.isdigit():
        err.print("endpoint must be HOST:PORT")
        raise typer.Exit(2)
    port = int(port_text)
    table_name = service_table or ("teaclave_authentication_service" if port == 7776
                                   else "teaclave_frontend_service")
    try:
        der = fetch_unverified_certificate(host, port)
    except (OSError, AttestationError) as e:
        err.print(f"[red]cannot fetch the certificate of {endpoint}:[/] {e}")
        raise typer.Exit(1) from e
    table = Table(title=f"{endpoint} ({table_name})", show_header=False)
    table.add_column("field", no_wrap=True)
    table.add_column("value", overflow="fold")
    _unverified_details(der, table)
    ok = True
    now = dt.datetime.now(dt.UTC)
    try:
        bundle = TrustBundle.load(data_dir)
        if bundle.sim_dcap_root_der is not None:
            err.print(f"[yellow]{SIM_WARNING}: trusting the sim DCAP root of {data_dir}[/]")
        inputs = trust_from_bundle(bundle, threshold=threshold)
        table.add_row("enclave_info", f"[green]signed[/] by {len(bundle.signatures)} auditor(s) "
                                      f"(threshold {threshold})")
    except (AttestationError, ServerAttestationError) as e:
        table.add_row("enclave_info", f"[red]REFUSED[/] {e}")
        console.print(table)
        raise typer.Exit(1) from e
    try:
        peer = verify_teaclave_certificate(
            der, as_root_der=inputs.as_root_der, enclave_info=inputs.enclave_info.services,
            service_table=table_name, now=now, allowed_statuses=_ALLOWED_REPORT_STATUSES)
        table.add_row("Teaclave profile", f"[green]VERIFIED[/] (status {peer.status})")
    except RaTlsError as e:
        ok = False
        table.add_row("Teaclave profile", f"[red]REFUSED[/] {e.reason}: {e}")
    try:
        policy = AppraisalPolicy(list(inputs.ratls_roots or ()), inputs.enclave_info,
                                 max_evidence_age=_RATLS_MAX_EVIDENCE_AGE)
        ratls = verify_ratls_with_policy(der, policy, service=table_name, now=now)
        table.add_row("TCB status", str(ratls.status))
        table.add_row("TCB advisories", ", ".join(ratls.advisories) or "none")
        table.add_row("RA-TLS profile", "[green]VERIFIED[/] (dcap-qvl)")
    except AttestationError as e:
        ok = False
        table.add_row("RA-TLS profile", f"[red]REFUSED[/] {getattr(e, 'reason', type(e).__name__)}"
                                        f": {e}")
    table.add_row("verdict", "[bold green]TRUSTED[/]" if ok else "[bold red]NOT TRUSTED[/]")
    console.print(table)
    if not ok:
        raise typer.Exit(1)


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
        CollateralFetcher,
        SimAttester,
        UnsafeTrustSimRoot,
        dcap_quote_verifier,
        run_attestation_service,
    )
    from ..keys import SimSealer

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


def register(app: typer.Typer) -> None:
    """Add the attestation commands to the ``confide`` app."""
    app.command("attest")(attest)
    app.command("attestation-service")(attestation_service)
    app.add_typer(enclave_info_app, name="enclave-info")
