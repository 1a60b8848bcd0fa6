"""The SEV-SNP ATTESTATION_REPORT, versions 2 to 5, parsed into a typed model.

Layout (AMD "SEV Secure Nested Paging Firmware ABI Specification",
ATTESTATION_REPORT; offsets in hex, 1184 bytes, the signature covers
[0, 0x2A0)):

====== ==== ======================================================================
offset size field
====== ==== ======================================================================
000    4    VERSION (2..5 accepted)
004    4    GUEST_SVN
008    8    POLICY (bit 19 DEBUG)
010    16   FAMILY_ID;  020 16 IMAGE_ID
030    4    VMPL;  034 4 SIGNATURE_ALGO (1 = ECDSA P-384 / SHA-384)
038    8    CURRENT_TCB;  040 8 PLATFORM_INFO
048    4    bit 0 AUTHOR_KEY_EN, bit 1 MASK_CHIP_KEY, bits 4:2 SIGNING_KEY
            (0 VCEK, 1 VLEK, 7 none), bits 31:5 reserved
04C    4    reserved
050    64   REPORT_DATA;  090 48 MEASUREMENT;  0C0 32 HOST_DATA
0E0    48   ID_KEY_DIGEST;  110 48 AUTHOR_KEY_DIGEST
140    32   REPORT_ID;  160 32 REPORT_ID_MA
180    8    REPORTED_TCB
188    3    v3+: CPUID_FAM_ID, CPUID_MOD_ID, CPUID_STEP (v2: reserved)
18B    21   reserved
1A0    64   CHIP_ID (Turin: an 8-byte hwID, then zeros)
1E0    8    COMMITTED_TCB
1E8    4    CURRENT_BUILD, CURRENT_MINOR, CURRENT_MAJOR, reserved
1EC    4    COMMITTED_BUILD, COMMITTED_MINOR, COMMITTED_MAJOR, reserved
1F0    8    LAUNCH_TCB
1F8    16   v5: LAUNCH_MIT_VECTOR, CURRENT_MIT_VECTOR (v2-v4: reserved)
208    152  reserved
2A0    144  SIGNATURE r, s (72 bytes each, little-endian)
330    368  reserved (signature area)
====== ==== ======================================================================

**Canonical reports**: every reserved byte and bit above must be zero, so that no
data (signed or not) can ride along unnoticed; the 368 bytes after r and s are
not covered by the signature at all. Pure: nothing here is trusted until
:func:`confide.attestation.verify_snp_report` has checked the signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .._errors import EvidenceFormatError, ReservedFieldError
from ._reader import Reader
from ._snp_tcb import SnpProduct, SnpTcb, product_from_cpuid

__all__ = [
    "SNP_REPORT_SIZE",
    "SNP_REPORT_VERSIONS",
    "SNP_SIGNED_SIZE",
    "SnpReport",
    "SnpSigningKey",
    "parse_snp_report",
]

SNP_REPORT_SIZE = 0x4A0
SNP_SIGNED_SIZE = 0x2A0
SNP_REPORT_VERSIONS = (2, 3, 4, 5)
POLICY_DEBUG_BIT = 1 << 19
FLAG_AUTHOR_KEY_EN = 1 << 0
FLAG_MASK_CHIP_KEY = 1 << 1
SnpSigningKey = Literal["VCEK", "VLEK", "NONE"]
_SIGNING_KEYS: dict[int, SnpSigningKey] = {0: "VCEK", 1: "VLEK", 7: "NONE"}


@dataclass(frozen=True)
class SnpVersion:
    """A firmware version (major.minor, build)."""

    major: int
    minor: int
    build: int


@dataclass(frozen=True)
class SnpReport:
    """An SEV-SNP ATTESTATION_REPORT (any of versions 2-5).

    ``product`` comes from the CPUID fields (version 3+); a version 2 report
    has none and its TCBs are decoded with the Milan/Genoa layout. Fields that
    do not exist in the report's version are None.
    """

    version: int
    guest_svn: int
    policy: int
    family_id: bytes
    image_id: bytes
    vmpl: int
    signature_algo: int
    current_tcb: SnpTcb
    platform_info: int
    flags: int
    report_data: bytes
    measurement: bytes
    host_data: bytes
    id_key_digest: bytes
    author_key_digest: bytes
    report_id: bytes
    report_id_ma: bytes
    reported_tcb: SnpTcb
    cpuid: tuple[int, int, int] | None
    product: SnpProduct | None
    chip_id: bytes
    committed_tcb: SnpTcb
    current_version: SnpVersion
    committed_version: SnpVersion
    launch_tcb: SnpTcb
    launch_mit_vector: int | None
    current_mit_vector: int | None
    signature_r: int
    signature_s: int
    raw: bytes

    @property
    def debug(self) -> bool:
        """True when the guest policy allows debugging (bit 19)."""
        return bool(self.policy & POLICY_DEBUG_BIT)

    @property
    def author_key_en(self) -> bool:
        """Flag bit 0: the ID block was signed with an author key."""
        return bool(self.flags & FLAG_AUTHOR_KEY_EN)

    @property
    def mask_chip_key(self) -> bool:
        """Flag bit 1 (MASK_CHIP_KEY): the platform does not use its VCEK."""
        return bool(self.flags & FLAG_MASK_CHIP_KEY)

    @property
    def signing_key(self) -> SnpSigningKey:
        """Flag bits 4:2 (SIGNING_KEY): which key signed the report."""
        return _SIGNING_KEYS[(self.flags >> 2) & 7]

    @property
    def signed_bytes(self) -> bytes:
        """The bytes the signature covers."""
        return self.raw[:SNP_SIGNED_SIZE]


def _zero(data: bytes, what: str, offset: int) -> None:
    """Refuse a non-zero byte in ``data``, which starts at ``offset`` of the report."""
    for i, byte in enumerate(data):
        if byte:
            raise ReservedFieldError(f"SNP report: reserved {what}", offset + i)


def _take_zero(r: Reader, n: int, what: str) -> None:
    offset = r.offset
    _zero(r.take(n, what), what, offset)


def _version(r: Reader, what: str) -> SnpVersion:
    build, minor, major = r.take(1, f"{what} build")[0], r.take(1, f"{what} minor")[0], \
        r.take(1, f"{what} major")[0]
    _take_zero(r, 1, f"byte after {what} version")
    return SnpVersion(major=major, minor=minor, build=build)


def parse_snp_report(unverified_report: bytes) -> SnpReport:
    """Parse a 1184-byte SEV-SNP report, versions 2-5 (structure only; nothing is trusted).

    Raises:
        EvidenceFormatError: wrong size, version, signature algorithm or
            signing-key value, unknown CPUID product, or non-zero reserved bytes.
    """
    if len(unverified_report) != SNP_REPORT_SIZE:
        raise EvidenceFormatError(f"SNP report must be {SNP_REPORT_SIZE} bytes, "
                                  f"got {len(unverified_report)}")
    raw = bytes(unverified_report)
    r = Reader(raw, "SNP report")
    version, guest_svn, policy = r.u32("version"), r.u32("guest_svn"), r.u64("policy")
    if version not in SNP_REPORT_VERSIONS:
        raise EvidenceFormatError(f"SNP report version {version} unsupported (2-5 are)")
    family_id, image_id = r.take(16, "family_id"), r.take(16, "image_id")
    vmpl, sig_algo = r.u32("vmpl"), r.u32("signature_algo")
    if sig_algo != 1:
        raise EvidenceFormatError(f"SNP signature algorithm {sig_algo} unsupported (1 is)")
    current_tcb_raw = r.take(8, "current_tcb")
    platform_info, flags = r.u64("platform_info"), r.u32("flags")
    reserved_bits = flags & ~0x1F
    if reserved_bits:
        lowest = (reserved_bits & -reserved_bits).bit_length() - 1
        raise ReservedFieldError(f"SNP report: reserved SIGNER_INFO bits ({flags:#x})",
                                 0x48 + lowest // 8)
    if (flags >> 2) & 7 not in _SIGNING_KEYS:
        raise EvidenceFormatError(f"SNP report: SIGNING_KEY {(flags >> 2) & 7} is reserved")
    _take_zero(r, 4, "word at 0x4C")
    report_data, measurement = r.take(64, "report_data"), r.take(48, "measurement")
    host_data, id_key_digest = r.take(32, "host_data"), r.take(48, "id_key_digest")
    author_key_digest = r.take(48, "author_key_digest")
    report_id, report_id_ma = r.take(32, "report_id"), r.take(32, "report_id_ma")
    reported_tcb_raw = r.take(8, "reported_tcb")
    cpuid_raw = r.take(3, "cpuid")
    _take_zero(r, 21, "bytes 0x18B-0x19F")
    cpuid: tuple[int, int, int] | None = None
    product: SnpProduct | None = None
    if version >= 3:
        cpuid = (cpuid_raw[0], cpuid_raw[1], cpuid_raw[2])
        product = product_from_cpuid(cpuid[0], cpuid[1])
    else:
        _zero(cpuid_raw, "bytes 0x188-0x18A after REPORTED_TCB of a version 2 report", 0x188)
    chip_id = r.take(64, "chip_id")
    committed_tcb_raw = r.take(8, "committed_tcb")
    current_version, committed_version = _version(r, "current"), _version(r, "committed")
    launch_tcb_raw = r.take(8, "launch_tcb")
    mit = r.take(16, "mitigation vectors")
    launch_mit = current_mit = None
    if version >= 5:
        launch_mit, current_mit = (int.from_bytes(mit[:8], "little"),
                                   int.from_bytes(mit[8:], "little"))
    else:
        _zero(mit, f"bytes 0x1F8-0x207 of a version {version} report", 0x1F8)
    _take_zero(r, SNP_SIGNED_SIZE - 0x208, "bytes 0x208-0x29F")
    r_raw, s_raw = r.take(72, "signature r"), r.take(72, "signature s")
    _zero(r_raw[48:], "unsigned signature r above 384 bits", SNP_SIGNED_SIZE + 48)
    _zero(s_raw[48:], "unsigned signature s above 384 bits", SNP_SIGNED_SIZE + 72 + 48)
    _take_zero(r, SNP_REPORT_SIZE - SNP_SIGNED_SIZE - 144,
               "unsigned signature area after r and s")
    r.end()

    def tcb(b: bytes) -> SnpTcb:
        return SnpTcb.decode(b, product)

    return SnpReport(
        version=version, guest_svn=guest_svn, policy=policy, family_id=family_id,
        image_id=image_id, vmpl=vmpl, signature_algo=sig_algo, current_tcb=tcb(current_tcb_raw),
        platform_info=platform_info, flags=flags, report_data=report_data,
        measurement=measurement, host_data=host_data, id_key_digest=id_key_digest,
        author_key_digest=author_key_digest, report_id=report_id, report_id_ma=report_id_ma,
        reported_tcb=tcb(reported_tcb_raw), cpuid=cpuid, product=product, chip_id=chip_id,
        committed_tcb=tcb(committed_tcb_raw), current_version=current_version,
        committed_version=committed_version, launch_tcb=tcb(launch_tcb_raw),
        launch_mit_vector=launch_mit, current_mit_vector=current_mit,
        signature_r=int.from_bytes(r_raw, "little"), signature_s=int.from_bytes(s_raw, "little"),
        raw=raw)
