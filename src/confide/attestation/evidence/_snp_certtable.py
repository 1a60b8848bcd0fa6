"""The SEV-SNP certificate table (configfs-tsm ``auxblob``) as the PEM chain the verifier takes.

The host hands a guest its endorsement certificates with the report (GHCB
extended guest request; Linux configfs-tsm exposes them as ``auxblob``): a
table of 24-byte entries ``GUID (16) | offset u32 LE | length u32 LE``, ended by
an all-zero entry, offsets counted from the start of the table, each pointing
at a DER certificate. GUIDs (AMD GHCB specification; read in RFC 4122 byte
order, as google/go-sev-guest and virtee/sev do):

* VCEK ``63da758d-e664-4564-adc5-f4b93be8accd``
* VLEK ``a8074bc2-a25a-483e-aae6-39c045a0b8a1``
* ASK (also the ASVK) ``4ab7b379-bbac-4fe4-a02f-05aef327c782``
* ARK ``c0b406a4-a803-4952-9743-3fb6014cd0ae``

Other entries (e.g. extra platform info) are skipped. This only reshapes
untrusted bytes; :func:`confide.attestation.verify_snp_report` verifies them.
"""

from __future__ import annotations

import uuid
import warnings

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .._errors import EvidenceFormatError

__all__ = ["cert_table_to_pem"]

_ENTRY = 24
_VCEK = uuid.UUID("63da758d-e664-4564-adc5-f4b93be8accd").bytes
_VLEK = uuid.UUID("a8074bc2-a25a-483e-aae6-39c045a0b8a1").bytes
_ASK = uuid.UUID("4ab7b379-bbac-4fe4-a02f-05aef327c782").bytes
_ARK = uuid.UUID("c0b406a4-a803-4952-9743-3fb6014cd0ae").bytes


def _entries(table: bytes) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    for start in range(0, len(table) - _ENTRY + 1, _ENTRY):
        entry = table[start:start + _ENTRY]
        if not any(entry):
            return found
        guid = entry[:16]
        offset = int.from_bytes(entry[16:20], "little")
        length = int.from_bytes(entry[20:24], "little")
        if offset + length > len(table) or length == 0:
            raise EvidenceFormatError("SNP certificate table: entry points outside the table")
        if guid in found:
            raise EvidenceFormatError("SNP certificate table: duplicate entry")
        found[guid] = table[offset:offset + length]
    raise EvidenceFormatError("SNP certificate table: no terminating entry")


def _pem(der: bytes, what: str) -> bytes:
    try:
        with warnings.catch_warnings():  # AMD's VCEK/VLEKs have serial 0 (NOTES.md)
            warnings.simplefilter("ignore")
            cert = x509.load_der_x509_certificate(der)
    except ValueError as e:
        raise EvidenceFormatError(f"SNP certificate table: the {what} is not DER") from e
    return cert.public_bytes(serialization.Encoding.PEM)


def cert_table_to_pem(unverified_table: bytes) -> bytes:
    """``VCEK|VLEK, ASK|ASVK[, ARK]`` as PEM, from a certificate table.

    Raises:
        EvidenceFormatError: malformed table, neither or both of VCEK and
            VLEK, no ASK/ASVK entry, or a certificate that is not DER.
    """
    entries = _entries(bytes(unverified_table))
    leaves = [(g, n) for g, n in ((_VCEK, "VCEK"), (_VLEK, "VLEK")) if g in entries]
    if len(leaves) != 1:
        raise EvidenceFormatError("SNP certificate table must hold exactly one VCEK or VLEK")
    if _ASK not in entries:
        raise EvidenceFormatError("SNP certificate table holds no ASK/ASVK")
    guid, name = leaves[0]
    pem = _pem(entries[guid], name) + _pem(entries[_ASK], "ASK/ASVK")
    if _ARK in entries:
        pem += _pem(entries[_ARK], "ARK")
    return pem
