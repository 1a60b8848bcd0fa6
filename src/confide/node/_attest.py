"""The sim node's attestation: its attester, report service, certificates and trust files.

SIM ONLY. One object per all-in-one server:

* a :class:`~confide.attestation.sim.SimAttester` (SGX v3 quotes; state in
  ``<data>/sim-attester``, keys mode 0600) whose MRENCLAVE is the
  ``package_measurement`` of the installed confide code;
* the in-process attestation report service (``ReportAuthority``, state in
  ``<data>/attestation-service``, private keys sealed with the sim sealer): it
  verifies each quote with dcap-qvl against the sim root and signs the
  Teaclave-compatible report;
* the attested API certificate (Teaclave extension first, RA-TLS evidence and
  collateral), re-issued by the caller when ``renewal_due``;
* the key service's appraisal of enrolling workers (accepted measurement =
  this build's, sim root only);
* the client trust files written into the data dir (see
  ``confide.attestation.tls.TrustBundle``), signed by a sim auditor whose private key
  stays in ``<data>/sim-auditor.private.pem`` (0600). A real deployment has
  external auditors sign with ``confide enclave-info sign``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .._atomic import write_atomic
from ..attestation import (
    SIM_WARNING,
    AppraisalPolicy,
    AttestedCertificate,
    EnclaveInfo,
    EndorsedReport,
    Evidence,
    ReportServiceError,
    UnsafeTrustSimRoot,
    dcap_quote_verifier,
    generate_enclave_info,
    issue_attested_certificate,
    parse_quote,
    sign_enclave_info,
)
from ..attestation.sim import node_sim_attester
from ..attestation.tls import (
    API_CERT_FILE,
    AS_ROOT_FILE,
    AUDITORS_DIR,
    ENCLAVE_INFO_FILE,
    SIM_DCAP_ROOT_FILE,
    DcapVerdict,
    write_public_file,
)
from ..config import Limits
from ..keys import SimSealer
from ..services.attestation_report import (
    ReportAuthority,
    ReportService,
    client_tls_context,
    request_report,
)
from ..telemetry import reason_of
from ..telemetry._metrics import ATTESTATION_APPRAISALS, ATTESTATION_FAILURES, reason_label

__all__ = ["SIM_AUDITOR", "TEACLAVE_SERVICES", "RemoteReports", "SimNode"]

_log = logging.getLogger("confide.server.attest")

#: Teaclave's seven service tables (spec §4.2), all hosted by the all-in-one node.
TEACLAVE_SERVICES = ("access_control", "authentication", "execution", "frontend", "management",
                     "scheduler", "storage")
SIM_AUDITOR = "sim_auditor"
_AUDITOR_PRIVATE_FILE = "sim-auditor.private.pem"
_AUDITOR_BITS = 3072


@dataclass(frozen=True)
class RemoteReports:
    """Another node's report service (``--attestation-service``), and its AS root.

    Every node of a deployment whose API certificates are endorsed by one report
    service is attested by clients with one set of trust files (one AS root):
    several frontends behind one client profile need it.
    """

    host: str
    port: int
    root_pem: bytes  # the service's AS root (public: its as-root-ca.pem)

    def endorse(self, quote: bytes, limits: Limits) -> EndorsedReport:
        """Have the service endorse ``quote`` over HTTPS checked against the AS root.

        Raises:
            ConnectionError: the service was unreachable or refused the quote.
        """
        try:
            return request_report(self.host, self.port, quote,
                                  tls_context=client_tls_context(self.root_pem), limits=limits)
        except (OSError, ReportServiceError) as e:
            raise ConnectionError(f"the attestation report service at {self.host}:{self.port} "
                                  f"did not endorse this node: {e}") from e


def _sim_auditor_key(data_dir: Path) -> rsa.RSAPrivateKey:
    path = data_dir / _AUDITOR_PRIVATE_FILE
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path} is not an RSA key")
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=_AUDITOR_BITS)
    write_atomic(path, key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    _log.warning("%s: created the SIM-ONLY auditor key %s; real deployments use external "
                 "auditors (confide enclave-info sign)", SIM_WARNING, path)
    return key


class SimNode:
    """Attestation of one sim node (see the module docstring).

    Args:
        data_dir: the server's data directory (mode 0700).
        clock: the current time (the API edge).
        limits: size caps.
    """

    def __init__(self, data_dir: Path, *, clock: Callable[[], dt.datetime],
                 limits: Limits | None = None, attester_dir: Path | None = None,
                 reports: RemoteReports | None = None) -> None:
        self._data = data_dir
        self._clock = clock
        self._limits = limits if limits is not None else Limits()
        self.attester_dir = attester_dir if attester_dir is not None else data_dir / "sim-attester"
        self.attester = node_sim_attester(self.attester_dir)
        self.sim_root = UnsafeTrustSimRoot(self.attester.root_certificate_der)
        self._remote = reports
        # Reports come from another node's report service, or from one of this node's own.
        self.authority = None if reports is not None else ReportAuthority.load_or_create(
            data_dir / "attestation-service", SimSealer(data_dir / "sim-sealing.key"), clock())
        self._verify_quote = dcap_quote_verifier(
            self.sim_root, lambda _quote, now: self.attester.collateral(now), limits=self._limits)

    def report_service(self) -> ReportService:
        """This node's report service, for other nodes (``--attestation-service``)."""
        assert self.authority is not None  # a node with remote reports serves none
        return ReportService(self.authority, self._verify_quote, self._clock, self._limits)

    @property
    def measurements(self) -> dict[str, str]:
        """This node's ``mr_enclave``/``mr_signer`` (lower-case hex)."""
        return self.attester.measurements

    def enclave_info(self) -> EnclaveInfo:
        """This build's measurements for every Teaclave service (not auditor-checked)."""
        entry = self.measurements
        return EnclaveInfo({f"teaclave_{s}_service": dict(entry) for s in TEACLAVE_SERVICES})

    def issue_certificate(self, dns_names: Sequence[str] = ()) -> AttestedCertificate:
        """A fresh P-256 key, a sim quote binding it, the report service's endorsement.

        Args:
            dns_names: the names clients reach the API by (SAN DNS, so that the
                TLS server name they send matches the certificate).
        """
        now = self._clock()

        def get_quote(report_data: bytes) -> bytes:
            return self.attester.evidence(report_data, now=now).quote

        def endorse(quote: bytes) -> EndorsedReport:
            if self._remote is not None:
                return self._remote.endorse(quote, self._limits)
            assert self.authority is not None
            try:
                verdict = self._verify_quote(quote, now)
            except Exception as e:
                ATTESTATION_APPRAISALS.labels("certificate", "refused").inc()
                ATTESTATION_FAILURES.labels("certificate", reason_label(reason_of(e))).inc()
                raise
            ATTESTATION_APPRAISALS.labels("certificate", "ok").inc()
            return self.authority.endorse(quote, verdict, now)

        return issue_attested_certificate(
            get_quote, endorse, now, get_collateral=lambda _q: self.attester.collateral(now),
            dns_names=dns_names)

    def role_tables(self) -> dict[str, dict[str, str]]:
        """The enclave_info tables the key service grants roles by (this build's, sim).

        The same tables the auditor-signed ``enclave_info.toml`` of the data
        dir lists (``write_client_files``): one per Teaclave service.
        """
        return {f"teaclave_{s}_service": dict(self.measurements) for s in TEACLAVE_SERVICES}

    def enrolment_appraiser(self) -> Callable[[bytes, dt.datetime], DcapVerdict]:
        """``KeyService``'s ``appraise``: verify a joining node's quote (sim root only).

        This checks the evidence (signatures, collateral, TCB status) and
        returns the *verified* measurements; which role they may hold is the
        key service's ``authorize_services`` (``RoleMeasurements``), so a node
        refused for a role is told which role. The expected REPORTDATA passed
        to the policy is the quote's own (the policy then checks the signature
        over it); ``KeyService.enrol`` compares the verified REPORTDATA with the
        request's binding, in constant time. Freshness comes from the key
        service's single-use nonce bound into REPORTDATA, so the evidence-age
        check (an unbound claim) is off.
        """

        def appraise(quote: bytes, now: dt.datetime) -> DcapVerdict:
            unverified = parse_quote(quote, self._limits)
            body = unverified.body
            claimed = {"mr_enclave": bytes(getattr(body, "mr_enclave", b"")).hex(),
                       "mr_signer": bytes(getattr(body, "mr_signer", b"")).hex()}
            # Signatures and TCB here; the measurement is compared per role afterwards.
            policy = AppraisalPolicy([self.sim_root],
                                     EnclaveInfo({"teaclave_node_service": claimed}),
                                     max_evidence_age=None, limits=self._limits)
            evidence = Evidence(tee="sgx", quote=quote, collateral=self.attester.collateral(now))
            result = policy.appraise(evidence, expected_report_data=body.report_data,
                                     service="node", now=now)
            m = result.measurements
            return DcapVerdict(status=result.tcb_status, advisories=result.advisory_ids,
                               mr_enclave=bytes.fromhex(m.get("mr_enclave", "")),
                               mr_signer=bytes.fromhex(m.get("mr_signer", "")),
                               report_data=result.report_data, measurements=dict(m))

        return appraise

    def write_client_files(self, api_cert_pem: bytes) -> None:
        """Write what a client needs to attest this node into the data dir (no secrets)."""
        entry = self.measurements
        raw = generate_enclave_info({s: entry for s in TEACLAVE_SERVICES})
        auditor = _sim_auditor_key(self._data)
        adir = self._data / AUDITORS_DIR / SIM_AUDITOR
        write_public_file(adir / f"{SIM_AUDITOR}.public.pem", auditor.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        write_public_file(adir / f"{SIM_AUDITOR}.sign.sha256", sign_enclave_info(raw, auditor))
        write_public_file(self._data / ENCLAVE_INFO_FILE, raw)
        write_public_file(self._data / AS_ROOT_FILE, self.as_root_pem())
        write_public_file(self._data / SIM_DCAP_ROOT_FILE, self.attester.root_certificate_der)
        self.write_api_certificate(api_cert_pem)

    def as_root_pem(self) -> bytes:
        """The root of the report service that endorses this node (clients' AS root)."""
        if self._remote is not None:
            return self._remote.root_pem
        assert self.authority is not None
        return self.authority.root_certificate.public_bytes(serialization.Encoding.PEM)

    def write_api_certificate(self, api_cert_pem: bytes) -> None:
        """Publish the current API certificate (for clients that pin instead of attest)."""
        write_public_file(self._data / API_CERT_FILE, api_cert_pem)
