"""Fixtures for the attested-TLS tests (fakes live in ``_fakes``)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from confide.services.attestation_report import ReportAuthority

from ._fakes import NOW


@pytest.fixture(scope="session")
def vectors() -> Path:
    env = os.environ.get("CONFIDE_VECTORS")
    candidates = [Path(env)] if env else []
    candidates += [
        Path("/work/shared/vectors"),
        Path(__file__).resolve().parents[3] / "shared" / "vectors",
    ]
    for candidate in candidates:
        if (candidate / "teaclave" / "tls_ra_cert_v4.der").exists():
            return candidate
    pytest.fail("test vectors not found; set CONFIDE_VECTORS")


@pytest.fixture(scope="session")
def authority() -> ReportAuthority:
    return ReportAuthority.create(NOW - dt.timedelta(days=1))


@pytest.fixture(scope="session")
def other_authority() -> ReportAuthority:
    return ReportAuthority.create(NOW - dt.timedelta(days=1))
