"""``confide attest HOST:PORT``: show a server's evidence and whether it verifies.

Fetches the server's certificate, shows its evidence as presented (TEE type,
measurements, report data, validity), then the verdict of both profiles
(Teaclave's report, RA-TLS through dcap-qvl) against the trust files of a data
directory: the same checks the SDK makes before it sends anything. The
verifiers are imported when the command runs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ._common import console, err

__all__ = ["attest"]


def _unverified_details(der: bytes, table: Table) -> None:
    """Rows describing the evidence as presented (nothing verified yet)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    from ..attestation import AttestationError, SgxQuote, parse_quote, tls_report_data
    from ..attestation.tls import (
        RATLS_EVIDENCE_OID,
        parse_ratls_evidence,
        parse_report,
        parse_teaclave_extension,
    )
    from ..config import Limits

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
    from ..attestation import (
        SIM_WARNING,
        AppraisalPolicy,
        AttestationError,
        RaTlsError,
        TrustBundle,
        fetch_unverified_certificate,
        verify_ratls_with_policy,
        verify_teaclave_certificate,
    )
    from ..client._attested import (
        _ALLOWED_REPORT_STATUSES,
        _RATLS_MAX_EVIDENCE_AGE,
        ServerAttestationError,
        trust_from_bundle,
    )

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
