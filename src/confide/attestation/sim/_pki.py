"""The sim TEE's certificate hierarchy and its DCAP collateral.

SIM ONLY: these keys live on the operator's disk and give no protection
against the operator. They exist so that sim evidence travels exactly the same
``dcap_qvl`` verification path as real Intel evidence; only the root differs,
and a verifier trusts it only through :class:`UnsafeTrustSimRoot`.

Hierarchy (all ECDSA P-256)::

    sim root CA ─┬─ sim PCK Platform CA ── sim PCK (Intel SGX extension) ── QE report
                 └─ sim TCB signing  ── TCB info, QE identity
    (attestation key signs quotes; the QE report binds it; signer key = MRSIGNER)
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from ..._atomic import write_atomic
from ._der import der_enumerated, der_integer, der_octets, der_oid, der_sequence

__all__ = ["SimPki", "raw_ecdsa_sign"]

SGX_EXT_OID = "1.2.840.113741.1.13.1"
FMSPC = bytes.fromhex("00C0FFEE0000")
PCE_ID = b"\x00\x00"
CPU_SVN = bytes([2, 2, 2, 2, 3, 1, 0, 5] + [0] * 8)
PCE_SVN = 11
_NOT_BEFORE = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
_NOT_AFTER = dt.datetime(2049, 12, 31, tzinfo=dt.UTC)
_KEYS = ("root", "pck_ca", "pck", "tcb_signing", "attestation", "signer")
_CERTS = ("root", "pck_ca", "pck", "tcb_signing")


def raw_ecdsa_sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ECDSA P-256/SHA-256 signature as the 64-byte r||s Intel uses."""
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _name(cn: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "confide SIM - NOT A TEE"),
    ])


def _sgx_extension() -> bytes:
    def field(arc: str, value: bytes) -> bytes:
        return der_sequence(der_oid(f"{SGX_EXT_OID}.{arc}"), value)

    tcb = [field(f"2.{i + 1}", der_integer(CPU_SVN[i])) for i in range(16)]
    tcb.append(field("2.17", der_integer(PCE_SVN)))
    tcb.append(field("2.18", der_octets(CPU_SVN)))
    return der_sequence(
        field("1", der_octets(b"\x51" * 16)),  # PPID (sim constant)
        field("2", der_sequence(*tcb)),
        field("3", der_octets(PCE_ID)),
        field("4", der_octets(FMSPC)),
        field("5", der_enumerated(0)),
    )


def _cert(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey, ca: bool, serial: int, sgx_ext: bool = False,
) -> x509.Certificate:
    pub = key.public_key()
    b = (x509.CertificateBuilder()
         .subject_name(_name(subject))
         .issuer_name(issuer.subject if issuer else _name(subject))
         .public_key(pub).serial_number(serial)
         .not_valid_before(_NOT_BEFORE).not_valid_after(_NOT_AFTER)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(
             digital_signature=not ca, content_commitment=False, key_encipherment=False,
             data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
             encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
             issuer_key.public_key()), critical=False))
    if sgx_ext:
        b = b.add_extension(x509.UnrecognizedExtension(
            x509.ObjectIdentifier(SGX_EXT_OID), _sgx_extension()), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class SimPki:
    """The loaded sim hierarchy (keys and certificates)."""

    keys: dict[str, ec.EllipticCurvePrivateKey]
    certs: dict[str, x509.Certificate]

    @classmethod
    def load_or_create(cls, state_dir: Path) -> SimPki:
        """Load the hierarchy from ``state_dir``, generating it on first use.

        Files are written with mode 0600 and moved into place atomically.
        """
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        marker = state_dir / "sim-pki.json"
        if not marker.exists():
            # One creator at a time: two processes must not interleave two hierarchies.
            with open(state_dir / ".sim-pki.lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not marker.exists():
                    cls._create(state_dir, marker)
        keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        for name in _KEYS:
            k = serialization.load_pem_private_key((state_dir / f"{name}.key.pem").read_bytes(),
                                                   None)
            if not isinstance(k, ec.EllipticCurvePrivateKey):
                raise TypeError(f"sim key {name} is not an EC key")
            keys[name] = k
        certs = {n: x509.load_der_x509_certificate((state_dir / f"{n}.cert.der").read_bytes())
                 for n in _CERTS}
        return cls(keys, certs)

    @staticmethod
    def _create(state_dir: Path, marker: Path) -> None:
        keys = {n: ec.generate_private_key(ec.SECP256R1()) for n in _KEYS}
        root = _cert("confide SIM Root CA", keys["root"], None, keys["root"], True, 1)
        pck_ca = _cert("confide SIM PCK Platform CA", keys["pck_ca"], root, keys["root"], True, 2)
        pck = _cert("confide SIM PCK Certificate", keys["pck"], pck_ca, keys["pck_ca"], False, 3,
                    sgx_ext=True)
        tcb = _cert("confide SIM TCB Signing", keys["tcb_signing"], root, keys["root"], False, 4)
        files = {f"{n}.key.pem": k.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()) for n, k in keys.items()}
        for n, c in (("root", root), ("pck_ca", pck_ca), ("pck", pck), ("tcb_signing", tcb)):
            files[f"{n}.cert.der"] = c.public_bytes(serialization.Encoding.DER)
        files[marker.name] = json.dumps(
            {"warning": "SIM ONLY: these keys give no protection against the operator"}).encode()
        for fname, data in files.items():  # marker last: its presence means "complete"
            write_atomic(state_dir / fname, data)

    def pem(self, *names: str) -> str:
        """Concatenated PEM of the named certificates."""
        return "".join(self.certs[n].public_bytes(serialization.Encoding.PEM).decode()
                       for n in names)

    def _crl(self, issuer: str, now: dt.datetime) -> bytes:
        crl = (x509.CertificateRevocationListBuilder()
               .issuer_name(self.certs[issuer].subject)
               .last_update(now - dt.timedelta(hours=1))
               .next_update(now + dt.timedelta(days=30))
               .add_extension(x509.CRLNumber(1), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   self.keys[issuer].public_key()), critical=False)
               .sign(self.keys[issuer], hashes.SHA256()))
        return crl.public_bytes(serialization.Encoding.DER)

    def collateral_json(self, tee: str, qe_identity: dict[str, object], now: dt.datetime) -> str:
        """DCAP collateral (dcap-qvl ``QuoteCollateralV3`` JSON) valid around ``now``."""
        issue, nxt = _iso(now - dt.timedelta(hours=1)), _iso(now + dt.timedelta(days=30))
        tcb: dict[str, object] = {
            "sgxtcbcomponents": [{"svn": v} for v in CPU_SVN], "pcesvn": PCE_SVN}
        tcb_info: dict[str, object] = {
            "id": "SGX", "version": 3, "issueDate": issue, "nextUpdate": nxt,
            "fmspc": FMSPC.hex().upper(), "pceId": PCE_ID.hex(), "tcbType": 0,
            "tcbEvaluationDataNumber": 17}
        if tee == "tdx":
            from ._quote import TDX_MODULE_SVN, TEE_TCB_SVN
            zero48 = "00" * 48
            tcb_info["id"] = "TDX"
            tcb_info["tdxModule"] = {"mrsigner": zero48, "attributes": "0000000000000000",
                                     "attributesMask": "FFFFFFFFFFFFFFFF"}
            tcb_info["tdxModuleIdentities"] = [{
                "id": f"TDX_{TEE_TCB_SVN[1]:02X}", "mrsigner": zero48,
                "attributes": "0000000000000000", "attributesMask": "FFFFFFFFFFFFFFFF",
                "tcbLevels": [{"tcb": {"isvsvn": TDX_MODULE_SVN}, "tcbDate":
                               "2024-03-13T00:00:00Z", "tcbStatus": "UpToDate"}]}]
            tcb["tdxtcbcomponents"] = [{"svn": v} for v in TEE_TCB_SVN]
        tcb_info["tcbLevels"] = [
            {"tcb": tcb, "tcbDate": "2024-03-13T00:00:00Z", "tcbStatus": "UpToDate"}]
        qe_identity = {**qe_identity, "issueDate": issue, "nextUpdate": nxt}
        tcb_raw = json.dumps(tcb_info, separators=(",", ":"))
        qe_raw = json.dumps(qe_identity, separators=(",", ":"))
        signer = self.keys["tcb_signing"]
        return json.dumps({
            "pck_crl_issuer_chain": self.pem("pck_ca", "root"),
            "root_ca_crl": self._crl("root", now).hex(),
            "pck_crl": self._crl("pck_ca", now).hex(),
            "tcb_info_issuer_chain": self.pem("tcb_signing", "root"),
            "tcb_info": tcb_raw,
            "tcb_info_signature": raw_ecdsa_sign(signer, tcb_raw.encode()).hex(),
            "qe_identity_issuer_chain": self.pem("tcb_signing", "root"),
            "qe_identity": qe_raw,
            "qe_identity_signature": raw_ecdsa_sign(signer, qe_raw.encode()).hex(),
        })
