"""Gramine and configfs-tsm attesters against fake directory trees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from confide.attestation import AttesterError, ConfigfsTsmAttester, GramineAttester
from confide.attestation.attesters import _hardware as _attesters
from confide.config import Limits

RD = b"\x42" * 64
_REAL_MKDIR, _REAL_RMDIR = os.mkdir, os.rmdir


def test_gramine_writes_report_data_and_reads_quote(tmp_path: Path) -> None:
    (tmp_path / "user_report_data").write_bytes(b"")
    (tmp_path / "quote").write_bytes(b"QUOTE")
    ev = GramineAttester(tmp_path).evidence(RD)
    assert (tmp_path / "user_report_data").read_bytes() == RD
    assert (ev.tee, ev.quote, ev.collateral) == ("sgx", b"QUOTE", None)


def test_gramine_rejects_wrong_report_data_length(tmp_path: Path) -> None:
    with pytest.raises(AttesterError, match="64 bytes"):
        GramineAttester(tmp_path).evidence(b"short")


def test_gramine_without_device_raises_attester_error(tmp_path: Path) -> None:
    with pytest.raises(AttesterError):
        GramineAttester(tmp_path / "missing").evidence(RD)


def test_gramine_refuses_oversized_quote(tmp_path: Path) -> None:
    (tmp_path / "quote").write_bytes(b"q" * 101)
    with pytest.raises(AttesterError, match="larger"):
        GramineAttester(tmp_path, Limits(max_quote_bytes=100)).evidence(RD)


class FakeTsm:
    """A configfs-tsm report directory whose entries appear on mkdir."""

    def __init__(self, root: Path, provider: str) -> None:
        self.root, self.provider = root, provider

    def mkdir(self, path, *a, **k) -> None:
        p = Path(path)
        _REAL_MKDIR(p)
        (p / "outblob").write_bytes(b"REPORT")
        (p / "auxblob").write_bytes(b"CERTS")
        (p / "provider").write_text(self.provider + "\n")
        (p / "generation").write_text("1\n")

    def rmdir(self, path) -> None:
        for f in Path(path).iterdir():
            f.unlink()
        _REAL_RMDIR(path)


@pytest.fixture
def tsm(tmp_path, monkeypatch):
    fake = FakeTsm(tmp_path, "tdx_guest")
    monkeypatch.setattr(_attesters.os, "mkdir", fake.mkdir)
    monkeypatch.setattr(_attesters.os, "rmdir", fake.rmdir)
    return fake


def test_configfs_tsm_produces_tdx_evidence_and_cleans_up(tsm) -> None:
    ev = ConfigfsTsmAttester("tdx", tsm.root).evidence(RD)
    assert (ev.tee, ev.quote, ev.collateral) == ("tdx", b"REPORT", b"CERTS")
    assert list(tsm.root.iterdir()) == []


def test_configfs_tsm_rejects_wrong_provider(tsm) -> None:
    with pytest.raises(AttesterError, match="provider"):
        ConfigfsTsmAttester("snp", tsm.root).evidence(RD)


def test_configfs_tsm_detects_concurrent_writer(tsm, monkeypatch) -> None:
    real = _attesters._read_capped

    def racing(path: Path, cap: int) -> bytes:
        if path.name == "outblob":  # another process writes inblob meanwhile
            g = path.parent / "generation"
            g.write_text(str(int(g.read_text()) + 1))
        return real(path, cap)

    monkeypatch.setattr(_attesters, "_read_capped", racing)
    with pytest.raises(AttesterError, match="concurrent writer"):
        ConfigfsTsmAttester("tdx", tsm.root).evidence(RD)


def test_configfs_tsm_retries_once_after_a_race(tsm, monkeypatch) -> None:
    real = _attesters._read_capped
    raced = []

    def racing_once(path: Path, cap: int) -> bytes:
        if path.name == "outblob" and not raced:
            raced.append(1)
            g = path.parent / "generation"
            g.write_text("7")
        return real(path, cap)

    monkeypatch.setattr(_attesters, "_read_capped", racing_once)
    assert ConfigfsTsmAttester("tdx", tsm.root).evidence(RD).quote == b"REPORT"


def test_configfs_tsm_without_kernel_support_raises(tmp_path) -> None:
    with pytest.raises(AttesterError):
        ConfigfsTsmAttester("tdx", tmp_path / "no-tsm").evidence(RD)
