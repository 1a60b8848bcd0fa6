"""A test AMD hierarchy and SEV-SNP reports laid out as Milan's, Genoa's or Turin's.

TEST ONLY. No real Turin (or Genoa) report is public, so these build one the
way AMD firmware does: ARK-<product> (RSA, RSASSA-PSS/SHA-384) -> ASK
"SEV-<product>" or ASVK "SEV-VLEK-<product>" -> VCEK/VLEK (ECDSA P-384) with
the KDS extensions of that product (Turin: FMC SPL, an 8-byte hwID), and a
report (CPUID of the product, TCB in its layout) signed by the VCEK/VLEK.
"""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

NOT_BEFORE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
NOT_AFTER = dt.datetime(2040, 1, 1, tzinfo=dt.UTC)
CPUID = {"Milan": (0x19, 0x01, 0x01), "Genoa": (0x19, 0x11, 0x01), "Turin": (0x1A, 0x02, 0x00)}
TURIN_HWID = bytes.fromhex("1e550a8ee5cf9f4d")
FULL_HWID = bytes(range(0x40, 0x80))
# component -> SPL; Turin's layout is FMC, BL, TEE, SNP, rsvd x3, UCODE
SPLS = {"fmc": 1, "bootloader": 2, "tee": 3, "snp": 4, "microcode": 0xD9}
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
_AMD = "1.3.6.1.4.1.3704.1"


def tcb_bytes(product: str, spls: dict[str, int] = SPLS) -> bytes:
    if product == "Turin":
        return bytes([spls["fmc"], spls["bootloader"], spls["tee"], spls["snp"], 0, 0, 0,
                      spls["microcode"]])
    return bytes([spls["bootloader"], spls["tee"], 0, 0, 0, 0, spls["snp"], spls["microcode"]])


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "confide TEST - not AMD")])


def _int(v: int) -> bytes:
    body = v.to_bytes(2 if v > 127 else 1, "big")
    return bytes([0x02, len(body)]) + body


def _ia5(s: str) -> bytes:
    return bytes([0x16, len(s)]) + s.encode()


def _ext(arc: str, value: bytes) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(x509.ObjectIdentifier(f"{_AMD}.{arc}"), value)


def _rsa_cert(subject: str, key: rsa.RSAPrivateKey, issuer: str, issuer_key: rsa.RSAPrivateKey,
              ) -> x509.Certificate:
    return (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(issuer_key, hashes.SHA384(), rsa_padding=_PSS))


@dataclass
class AmdTestHierarchy:
    """One product's test ARK and ASK/ASVK, and a VCEK or VLEK under them."""

    product: str
    kind: str
    ark: x509.Certificate
    intermediate: x509.Certificate
    leaf: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey

    @property
    def ark_der(self) -> bytes:
        return self.ark.public_bytes(serialization.Encoding.DER)

    def chain_pem(self, *, with_ark: bool = True) -> bytes:
        certs = [self.leaf, self.intermediate] + ([self.ark] if with_ark else [])
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)

    @property
    def hwid(self) -> bytes:
        return TURIN_HWID if self.product == "Turin" else FULL_HWID

    def report(self, *, version: int = 3, report_data: bytes = bytes(64),
               measurement: bytes = b"\x5a" * 48, policy: int = 0x30000,
               tcb: bytes | None = None, chip_id: bytes | None = None,
               cpuid: tuple[int, int, int] | None = None, signing_key: int | None = None,
               mit_vectors: tuple[int, int] = (0x3, 0x7), mask_chip_key: bool = False) -> bytes:
        """A signed report; every field defaults to a value that verifies."""
        tcb = tcb if tcb is not None else tcb_bytes(self.product)
        if chip_id is None:
            chip_id = (self.hwid.ljust(64, b"\x00") if self.kind == "VCEK" else bytes(64))
        key_bits = signing_key if signing_key is not None else (0 if self.kind == "VCEK" else 1)
        fam, mod, step = cpuid or CPUID[self.product]
        b = bytearray(0x4A0)
        struct.pack_into("<IIQ", b, 0, version, 0, policy)
        struct.pack_into("<II", b, 0x30, 0, 1)
        b[0x38:0x40] = tcb
        struct.pack_into("<QI", b, 0x40, 0x1, key_bits << 2 | (0b10 if mask_chip_key else 0))
        b[0x50:0x90] = report_data
        b[0x90:0xC0] = measurement
        b[0x140:0x160] = b"\x11" * 32
        b[0x160:0x180] = b"\xff" * 32
        b[0x180:0x188] = tcb
        if version >= 3:
            b[0x188:0x18B] = bytes([fam, mod, step])
        b[0x1A0:0x1E0] = chip_id
        b[0x1E0:0x1E8] = tcb
        b[0x1E8:0x1EB] = bytes([3, 55, 1])
        b[0x1EC:0x1EF] = bytes([3, 55, 1])
        b[0x1F0:0x1F8] = tcb
        if version >= 5:
            struct.pack_into("<QQ", b, 0x1F8, *mit_vectors)
        r, s = decode_dss_signature(self.leaf_key.sign(bytes(b[:0x2A0]),
                                                       ec.ECDSA(hashes.SHA384())))
        b[0x2A0:0x2E8] = r.to_bytes(72, "little")
        b[0x2E8:0x330] = s.to_bytes(72, "little")
        return bytes(b)


def make_test_amd(product: str, kind: str = "VCEK", *, spls: dict[str, int] = SPLS,
                  product_name: str | None = None) -> AmdTestHierarchy:
    """Generate the hierarchy (RSA-2048 keeps the tests fast; the verifier takes any size)."""
    ark_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    int_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ark = _rsa_cert(f"ARK-{product}", ark_key, f"ARK-{product}", ark_key)
    int_cn = f"SEV-{product}" if kind == "VCEK" else f"SEV-VLEK-{product}"
    intermediate = _rsa_cert(int_cn, int_key, f"ARK-{product}", ark_key)
    leaf_key = ec.generate_private_key(ec.SECP384R1())
    arcs = {"bootloader": 1, "tee": 2, "snp": 3, "microcode": 8, "fmc": 9}
    builder = (x509.CertificateBuilder().subject_name(_name(f"SEV-{kind}"))
               .issuer_name(intermediate.subject).public_key(leaf_key.public_key())
               .serial_number(0x42).not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
               .add_extension(_ext("1", _int(1)), critical=False)
               .add_extension(_ext("2", _ia5(product_name or f"{product}-B0")), critical=False))
    for name, arc in arcs.items():
        if name == "fmc" and product != "Turin":
            continue
        builder = builder.add_extension(_ext(f"3.{arc}", _int(spls[name])), critical=False)
    if kind == "VCEK":
        hwid = TURIN_HWID if product == "Turin" else FULL_HWID
        builder = builder.add_extension(_ext("4", hwid), critical=False)
    else:
        builder = builder.add_extension(_ext("5", _ia5("CN=test-csp.example")), critical=False)
    leaf = builder.sign(int_key, hashes.SHA384(), rsa_padding=_PSS)
    return AmdTestHierarchy(product, kind, ark, intermediate, leaf, leaf_key)
