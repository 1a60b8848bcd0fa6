"""Shared fixtures: the vectors directory, recorded times, sim attesters."""

from __future__ import annotations

import datetime as dt
import os
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from confide.attestation.sim import SimAttester

REPO = Path(__file__).resolve().parents[2]
SGX_TIME = dt.datetime.fromtimestamp(1750330571, dt.UTC)  # start of the accepted window
TDX_TIME = dt.datetime.fromtimestamp(1750329147, dt.UTC)
SNP_TIME = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
TDX_V5_TIME = dt.datetime(2026, 2, 19, tzinfo=dt.UTC)  # inside its TCB info's window


def vectors_path() -> Path | None:
    """The shared vectors: $CONFIDE_VECTORS, /work/shared/vectors, <repo>/../shared/vectors."""
    for cand in (os.environ.get("CONFIDE_VECTORS"), "/work/shared/vectors",
                 str(REPO.parent / "shared" / "vectors")):
        if cand and Path(cand, "README.md").exists():
            return Path(cand)
    return None


def _vectors() -> Path:
    path = vectors_path()
    if path is None:
        pytest.fail("test vectors not found (set CONFIDE_VECTORS)")
    return path


@pytest.fixture(scope="session")
def vectors() -> Path:
    return _vectors()


@pytest.fixture(scope="session")
def dcap(vectors: Path) -> dict[str, bytes]:
    d = vectors / "dcap"
    return {
        "sgx_quote": (d / "sgx_quote").read_bytes(),
        "sgx_collateral": (d / "sgx_quote_collateral.json").read_bytes(),
        "tdx_quote": (d / "tdx_quote").read_bytes(),
        "tdx_collateral": (d / "tdx_quote_collateral.json").read_bytes(),
        "tdx_v5_quote": (d / "tdx_quote_v5").read_bytes(),
        "tdx_v5_collateral": (d / "tdx_quote_v5_collateral.json").read_bytes(),
        "root": (d / "TrustedRootCA.der").read_bytes(),
    }


@pytest.fixture(scope="session")
def snp(vectors: Path) -> dict[str, bytes]:
    d = vectors / "snp"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # VCEK serial 0
        vcek = x509.load_der_x509_certificate((d / "vcek.testcer").read_bytes())
    ask_ark = (d / "ask_ark_milan.pem").read_bytes()
    return {
        "report": (d / "attestation.bin").read_bytes(),
        "chain": vcek.public_bytes(serialization.Encoding.PEM) + ask_ark,
        "ask_ark": ask_ark,
        "vcek_pem": vcek.public_bytes(serialization.Encoding.PEM),
    }


@pytest.fixture(scope="session")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sim-state")


@pytest.fixture(scope="session")
def sim_sgx(sim_dir: Path) -> SimAttester:
    return SimAttester(sim_dir, tee="sgx")


@pytest.fixture(scope="session")
def sim_tdx(sim_dir: Path) -> SimAttester:
    return SimAttester(sim_dir, tee="tdx")


@pytest.fixture(scope="session")
def sim_tdx_v5(sim_dir: Path) -> SimAttester:
    return SimAttester(sim_dir, tee="tdx", quote_version=5)


def rd(tag: bytes) -> bytes:
    """A 64-byte report data value."""
    return tag.ljust(64, b"\x00")
