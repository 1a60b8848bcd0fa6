"""The version is written in one place (``confide.__version__``); the package metadata
that pip and ``importlib.metadata`` see is read from it."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import confide

REPO = Path(__file__).resolve().parents[2]


def test_installed_metadata_reports_the_package_version() -> None:
    assert importlib.metadata.version("confide") == confide.__version__


def test_pyproject_reads_the_version_instead_of_writing_it() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "confide.__version__"}


def test_no_other_module_writes_a_version() -> None:
    src = REPO / "src" / "confide"
    writers = sorted(str(p.relative_to(src)) for p in src.rglob("*.py")
                     if "_gen" not in p.parts
                     and re.search(r"^__version__\s*=", p.read_text(), re.MULTILINE))
    assert writers == ["__init__.py"]
