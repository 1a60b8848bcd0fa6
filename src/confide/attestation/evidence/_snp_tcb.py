"""SEV-SNP product lines, their TCB_VERSION layouts, and what a VCEK/VLEK certifies.

Product line from the report's CPUID fields (report version 3 and later;
"family" is base + extended family, "model" is extended model << 4 | model):

====================  ===============  ========
CPUID family          CPUID model      product
====================  ===============  ========
0x19 (Zen 3/4)        0x00-0x0F        Milan
0x19                  0x10-0x1F, 0xA0-0xAF  Genoa (Genoa, Bergamo, Siena: one KDS line)
0x1A (Zen 5)          0x00-0x1F        Turin
====================  ===============  ========

Any other value is refused (fail closed). TCB_VERSION (8 bytes, little-endian
u64; AMD SEV-SNP ABI spec, TCB_VERSION tables), byte by byte:

* Milan, Genoa: BOOT_LOADER, TEE, reserved x4, SNP, MICROCODE;
* Turin: FMC, BOOT_LOADER, TEE, SNP, reserved x3, MICROCODE.

A VCEK/VLEK certifies each byte in an extension ``1.3.6.1.4.1.3704.1.3.n``
(n = 1 bootloader, 2 tee, 3 snp, 4-7 the reserved bytes, 8 microcode, 9 fmc);
``.1.2`` is the product name (IA5String, e.g. ``Milan-B0``, ``Turin``),
``.1.4`` the VCEK's hwID (64 bytes; 8 on Turin) and ``.1.5`` a VLEK's CSP_ID.
Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cryptography import x509

from .._errors import EvidenceFormatError, TcbMismatchError

__all__ = [
    "SNP_PRODUCTS",
    "SnpEndorsementKey",
    "SnpProduct",
    "SnpTcb",
    "product_from_cpuid",
    "read_endorsement_key",
    "tcb_layout",
]

SnpProduct = Literal["Milan", "Genoa", "Turin"]
SNP_PRODUCTS: tuple[SnpProduct, ...] = ("Milan", "Genoa", "Turin")
AMD_OID = "1.3.6.1.4.1.3704.1"
_HWID_SIZE = {"Milan": 64, "Genoa": 64, "Turin": 8}

# (byte index, component, extension arc under 1.3.6.1.4.1.3704.1.3); "spl4".."spl7" are
# reserved: their extension is optional and the byte must then be zero.
_MILAN_GENOA = ((0, "bootloader", 1), (1, "tee", 2), (2, "spl4", 4), (3, "spl5", 5),
                (4, "spl6", 6), (5, "spl7", 7), (6, "snp", 3), (7, "microcode", 8))
_TURIN = ((0, "fmc", 9), (1, "bootloader", 1), (2, "tee", 2), (3, "snp", 3),
          (4, "spl5", 5), (5, "spl6", 6), (6, "spl7", 7), (7, "microcode", 8))


def tcb_layout(product: SnpProduct) -> tuple[tuple[int, str, int], ...]:
    """(byte index, component name, SPL extension arc) of ``product``'s TCB_VERSION."""
    return _TURIN if product == "Turin" else _MILAN_GENOA


def product_from_cpuid(family: int, model: int) -> SnpProduct:
    """The product line of a report's CPUID_FAM_ID / CPUID_MOD_ID.

    Raises:
        EvidenceFormatError: not a known SEV-SNP product (fail closed).
    """
    if family == 0x19 and model <= 0x0F:
        return "Milan"
    if family == 0x19 and (0x10 <= model <= 0x1F or 0xA0 <= model <= 0xAF):
        return "Genoa"
    if family == 0x1A and model <= 0x1F:
        return "Turin"
    raise EvidenceFormatError(f"SNP report: CPUID family {family:#x} model {model:#x} is no "
                              "known SEV-SNP product (Milan, Genoa, Turin)")


@dataclass(frozen=True)
class SnpTcb:
    """A TCB_VERSION decoded with its product's layout.

    Attributes:
        bootloader, tee, snp, microcode: the security patch levels.
        fmc: Turin's FMC SPL; None on Milan/Genoa, which have no FMC.
        raw: the 8 bytes as in the report.
    """

    bootloader: int
    tee: int
    snp: int
    microcode: int
    fmc: int | None = None
    raw: bytes = bytes(8)

    @classmethod
    def decode(cls, raw: bytes, product: SnpProduct | None) -> SnpTcb:
        """Decode 8 bytes; ``product`` None means Milan/Genoa (report version 2)."""
        if len(raw) != 8:
            raise EvidenceFormatError("TCB_VERSION must be 8 bytes")
        parts = {name: raw[i] for i, name, _ in tcb_layout(product or "Milan")}
        return cls(bootloader=parts["bootloader"], tee=parts["tee"], snp=parts["snp"],
                   microcode=parts["microcode"], fmc=parts.get("fmc"), raw=bytes(raw))

    @classmethod
    def from_u64(cls, raw: bytes) -> SnpTcb:
        """Decode with the Milan/Genoa layout (kept for callers of the old API)."""
        return cls.decode(raw, "Milan")


@dataclass(frozen=True)
class SnpEndorsementKey:
    """What a VCEK or VLEK certificate certifies (read from its AMD extensions).

    Attributes:
        kind: ``"VCEK"`` (per chip, has ``hwid``) or ``"VLEK"`` (per cloud
            provider, has ``csp_id``).
        product_name: extension ``.1.2`` (``Milan-B0``, ``Genoa``, ``Turin``, ...).
        tcb: the certified TCB_VERSION bytes, composed with the product's layout.
        hwid: the chip id a VCEK is bound to (64 bytes; Turin: 8); None for a VLEK.
        csp_id: the cloud provider a VLEK belongs to; None for a VCEK.
    """

    kind: Literal["VCEK", "VLEK"]
    product_name: str
    tcb: SnpTcb
    hwid: bytes | None
    csp_id: str | None


def _extension(cert: x509.Certificate, arc: str) -> bytes | None:
    try:
        ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(f"{AMD_OID}.{arc}"))
    except x509.ExtensionNotFound:
        return None
    value = getattr(ext.value, "value", None)
    if not isinstance(value, bytes):
        raise EvidenceFormatError(f"AMD extension {arc}: not an opaque value")
    return value


def _small_int(raw: bytes, arc: str) -> int:
    if len(raw) < 3 or raw[0] != 0x02 or raw[1] != len(raw) - 2 or raw[1] > 2:
        raise EvidenceFormatError(f"AMD extension {arc}: not a small INTEGER")
    value = int.from_bytes(raw[2:], "big", signed=True)
    if not 0 <= value <= 255:
        raise EvidenceFormatError(f"AMD extension {arc}: SPL {value} is not a byte")
    return value


def _ia5(raw: bytes, arc: str) -> str:
    if len(raw) < 2 or raw[0] != 0x16 or raw[1] != len(raw) - 2 or raw[1] > 127:
        raise EvidenceFormatError(f"AMD extension {arc}: not a short IA5String")
    return raw[2:].decode("ascii", "strict")


def _octets(raw: bytes, size: int) -> bytes:
    """AMD's KDS stores the hwID untagged; accept a DER OCTET STRING too."""
    if len(raw) == size:
        return raw
    if len(raw) == size + 2 and raw[0] == 0x04 and raw[1] == size:
        return raw[2:]
    raise EvidenceFormatError(f"hwID extension: {len(raw)} bytes, want {size}")


def read_endorsement_key(cert: x509.Certificate, product: SnpProduct) -> SnpEndorsementKey:
    """Read a VCEK/VLEK certificate's AMD extensions with ``product``'s layout.

    A VCEK carries a hwID and no CSP_ID, a VLEK the reverse (anything else is
    refused). Every named SPL must be present; a reserved one may be absent
    (its byte is then zero).

    Raises:
        TcbMismatchError: a required extension is missing, or the product name
            is not ``product``'s.
        EvidenceFormatError: an extension is malformed.
    """
    name_raw = _extension(cert, "2")
    if name_raw is None:
        raise TcbMismatchError("endorsement key lacks the product name extension")
    product_name = _ia5(name_raw, "2")
    if product_name.split("-")[0] != product:
        raise TcbMismatchError(f"endorsement key is for {product_name!r}, the chain for {product}")
    tcb = bytearray(8)
    for index, component, arc in tcb_layout(product):
        raw = _extension(cert, f"3.{arc}")
        if raw is None:
            if component.startswith("spl"):
                continue
            raise TcbMismatchError(f"endorsement key lacks the {component} SPL (3.{arc})")
        tcb[index] = _small_int(raw, f"3.{arc}")
    hwid_raw, csp_raw = _extension(cert, "4"), _extension(cert, "5")
    if (hwid_raw is None) == (csp_raw is None):
        raise TcbMismatchError("endorsement key must carry exactly one of hwID (VCEK) and "
                               "CSP_ID (VLEK)")
    return SnpEndorsementKey(
        kind="VCEK" if hwid_raw is not None else "VLEK", product_name=product_name,
        tcb=SnpTcb.decode(bytes(tcb), product),
        hwid=_octets(hwid_raw, _HWID_SIZE[product]) if hwid_raw is not None else None,
        csp_id=_ia5(csp_raw, "5") if csp_raw is not None else None)
