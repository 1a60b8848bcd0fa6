"""The configfs-tsm ``auxblob`` certificate table becomes the chain the SNP verifier takes."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from confide.attestation import (
    AMD_ARKS,
    AttesterError,
    ConfigfsTsmAttester,
    EvidenceFormatError,
    verify_snp_report,
)
from confide.attestation.attesters import _hardware as _attesters
from confide.attestation.evidence import cert_table_to_pem

VCEK = uuid.UUID("63da758d-e664-4564-adc5-f4b93be8accd").bytes
VLEK = uuid.UUID("a8074bc2-a25a-483e-aae6-39c045a0b8a1").bytes
ASK = uuid.UUID("4ab7b379-bbac-4fe4-a02f-05aef327c782").bytes
ARK = uuid.UUID("c0b406a4-a803-4952-9743-3fb6014cd0ae").bytes
OTHER = uuid.UUID("ecae0c0f-9502-43b1-afa2-0ae2e0d565b6").bytes  # extra platform info


def table(entries: list[tuple[bytes, bytes]], *, terminate: bool = True) -> bytes:
    head_len = 24 * (len(entries) + (1 if terminate else 0))
    head, body = b"", b""
    for guid, blob in entries:
        head += guid + (head_len + len(body)).to_bytes(4, "little") + len(blob).to_bytes(4,
                                                                                      "little")
        body += blob
    return head + (bytes(24) if terminate else b"") + body


@pytest.fixture(scope="module")
def vlek_parts(vectors) -> dict[str, bytes]:
    d = vectors / "snp" / "vlek"
    asvk, ark = x509.load_pem_x509_certificates((d / "ask_ark_milan_vlek.pem").read_bytes())
    der = serialization.Encoding.DER
    return {"vlek": (d / "test-vlek.der").read_bytes(), "asvk": asvk.public_bytes(der),
            "ark": ark.public_bytes(der), "report": (d / "test-vlek-report.bin").read_bytes()}


def test_vlek_table_becomes_a_chain_that_verifies(vlek_parts) -> None:
    blob = table([(OTHER, b"\x01" * 8), (VLEK, vlek_parts["vlek"]), (ASK, vlek_parts["asvk"]),
                  (ARK, vlek_parts["ark"])])
    pem = cert_table_to_pem(blob)
    assert pem.count(b"BEGIN CERTIFICATE") == 3
    v = verify_snp_report(vlek_parts["report"], pem, trusted_arks_der=list(AMD_ARKS.values()),
                          now=dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
                          allowed_signing_keys=("VLEK",))
    assert v.details["signing_key"] == "VLEK"


@pytest.mark.parametrize(("what", "entries", "match"), [
    ("no leaf", [("ASK", "asvk")], "exactly one VCEK or VLEK"),
    ("two leaves", [("VCEK", "vlek"), ("VLEK", "vlek"), ("ASK", "asvk")], "exactly one"),
    ("no ask", [("VLEK", "vlek")], "no ASK"),
    ("duplicate", [("VLEK", "vlek"), ("VLEK", "vlek"), ("ASK", "asvk")], "duplicate"),
    ("not DER", [("VLEK", "junk"), ("ASK", "asvk")], "not DER"),
])
def test_rejects_malformed_certificate_tables(vlek_parts, what, entries, match) -> None:
    guids = {"VCEK": VCEK, "VLEK": VLEK, "ASK": ASK}
    blobs = {**vlek_parts, "junk": b"\x30\x03junk"}
    with pytest.raises(EvidenceFormatError, match=match):
        cert_table_to_pem(table([(guids[g], blobs[b]) for g, b in entries]))


def test_rejects_table_entry_pointing_outside(vlek_parts) -> None:
    blob = bytearray(table([(VLEK, vlek_parts["vlek"]), (ASK, vlek_parts["asvk"])]))
    blob[20:24] = (10**6).to_bytes(4, "little")
    with pytest.raises(EvidenceFormatError, match="outside"):
        cert_table_to_pem(bytes(blob))


def test_rejects_unterminated_table() -> None:
    only_entry = VLEK + (0).to_bytes(4, "little") + (24).to_bytes(4, "little")
    with pytest.raises(EvidenceFormatError, match="terminating"):
        cert_table_to_pem(only_entry)


def _fake_tsm(root: Path, monkeypatch, auxblob: bytes) -> None:
    real_mkdir, real_rmdir = _attesters.os.mkdir, _attesters.os.rmdir

    def mkdir(path, *a, **k) -> None:
        p = Path(path)
        real_mkdir(p)
        (p / "outblob").write_bytes(b"REPORT")
        (p / "auxblob").write_bytes(auxblob)
        (p / "provider").write_text("sev_guest\n")
        (p / "generation").write_text("1\n")

    def rmdir(path) -> None:
        for f in Path(path).iterdir():
            f.unlink()
        real_rmdir(path)

    monkeypatch.setattr(_attesters.os, "mkdir", mkdir)
    monkeypatch.setattr(_attesters.os, "rmdir", rmdir)


def test_snp_attester_returns_the_table_as_a_pem_chain(tmp_path, monkeypatch,
                                                       vlek_parts) -> None:
    _fake_tsm(tmp_path, monkeypatch, table([(VLEK, vlek_parts["vlek"]),
                                            (ASK, vlek_parts["asvk"])]))
    ev = ConfigfsTsmAttester("snp", tmp_path).evidence(bytes(64))
    assert ev.tee == "snp" and ev.collateral is not None
    assert ev.collateral.count(b"BEGIN CERTIFICATE") == 2


def test_snp_attester_refuses_a_malformed_table(tmp_path, monkeypatch) -> None:
    _fake_tsm(tmp_path, monkeypatch, b"\x01" * 30)
    with pytest.raises(AttesterError, match="auxblob"):
        ConfigfsTsmAttester("snp", tmp_path).evidence(bytes(64))
