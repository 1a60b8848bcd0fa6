"""``confide measure``: the identity an auditor computes matches what nodes attest."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import tomllib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from typer.testing import CliRunner

from confide.attestation import (
    AppraisalPolicy,
    UnsafeTrustSimRoot,
    verify_enclave_info,
)
from confide.attestation.appraisal import sign_enclave_info
from confide.attestation.measurement._package import package_dir
from confide.attestation.measurement._release import (
    measure_release,
    render_manifest_template,
    sgx_mr_signer,
)
from confide.attestation.sim import SimAttester
from confide.cli import app

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "deploy" / "gramine" / "confide.manifest.template"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
GRAMINE_VARS = {
    "gramine.libos": "/usr/lib/x86_64-linux-gnu/gramine/libsysdb.so",
    "gramine.runtimedir()": "/usr/lib/x86_64-linux-gnu/gramine/runtime/glibc",
    "log_level": "error", "arch_libdir": "/lib/x86_64-linux-gnu",
    "entrypoint": "/usr/bin/python3.11", "python_stdlib": "/usr/lib/python3.11",
    "site_packages": "/opt/confide/venv/lib/python3.11/site-packages",
    "data_dir": "/var/lib/confide", "enclave_size": "8G", "max_threads": "64", "isvsvn": "1",
}


def test_default_measurement_covers_the_whole_installed_package() -> None:
    # A node's sim MRENCLAVE hashes every file of confide, wherever the hashing
    # module sits in the tree; measuring a subdirectory would leave code unattested.
    import confide

    assert package_dir() == Path(confide.__file__).resolve().parent
    assert (package_dir() / "cli").is_dir() and (package_dir() / "attestation").is_dir()


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the package: what an auditor unpacks from the release."""
    root = tmp_path_factory.mktemp("release") / "confide"
    shutil.copytree(package_dir(), root, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return root


@pytest.fixture(scope="module")
def node(release: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[SimAttester, Path]:
    state = tmp_path_factory.mktemp("node-sim")
    return SimAttester(state, "sgx", package_root=release), state


def test_auditors_enclave_info_accepts_the_nodes_sim_evidence(release, node) -> None:
    """The auditor measures the release, signs; the node running it passes appraisal."""
    att, state = node
    runner = CliRunner()
    out = release.parent / "enclave_info.toml"
    res = runner.invoke(app, ["measure", "--package-root", str(release), "--sim-signer",
                              str(state / "signer.key.pem"), "--enclave-info", "sim-sgx",
                              "-o", str(out)])
    assert res.exit_code == 0, res.output
    auditor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info = verify_enclave_info(out.read_bytes(), [sign_enclave_info(out.read_bytes(), auditor)],
                               [auditor.public_key()], 1)
    assert dict(info.for_service("frontend") or {}) == att.measurements
    rd = b"\x07" * 64
    policy = AppraisalPolicy([UnsafeTrustSimRoot(att.root_certificate_der)], info)
    result = policy.appraise(att.evidence(rd, now=NOW), expected_report_data=rd,
                             service="execution", now=NOW)
    assert result.measurements["mr_enclave"] == att.measurements["mr_enclave"]


def test_sim_tdx_measurement_is_the_attesters(release, node) -> None:
    _, state = node
    tdx = SimAttester(state, "tdx", package_root=release)
    assert dict(measure_release(release).get("sim-tdx").enclave_info) == tdx.measurements


def test_measurement_is_reproducible_and_changes_with_any_file(release, tmp_path) -> None:
    first = measure_release(release).get("sim-sgx").enclave_info
    assert measure_release(release).get("sim-sgx").enclave_info == first
    other = tmp_path / "confide"
    shutil.copytree(release, other)
    assert measure_release(other).get("sim-sgx").enclave_info == first  # path-independent
    (other / "_json.py").write_text((other / "_json.py").read_text() + "\n# patched\n")
    assert measure_release(other).get("sim-sgx").enclave_info != first


def test_refuses_to_write_an_incomplete_enclave_info(release, tmp_path) -> None:
    res = CliRunner().invoke(app, ["measure", "--package-root", str(release),
                                   "--enclave-info", "sim-sgx", "-o", str(tmp_path / "e.toml")])
    assert res.exit_code == 1
    assert "mr_signer" in res.output and not (tmp_path / "e.toml").exists()
    res = CliRunner().invoke(app, ["measure", "--package-root", str(release),
                                   "--enclave-info", "tdx-cvm", "-o", str(tmp_path / "e.toml")])
    assert res.exit_code == 1 and "mrtd" in res.output


def test_json_output_names_what_was_not_computed(release) -> None:
    res = CliRunner().invoke(app, ["measure", "--package-root", str(release), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    by = {p["packaging"]: p for p in doc["packagings"]}
    assert set(by) == {"sim-sgx", "sim-tdx", "gramine-sgx", "tdx-cvm", "snp-cvm"}
    assert "mr_enclave" in by["gramine-sgx"]["missing"]
    assert "measurement" in by["snp-cvm"]["missing"]


# --- Gramine ---------------------------------------------------------------------------
def test_gramine_manifest_template_renders_to_a_production_manifest() -> None:
    manifest = tomllib.loads(render_manifest_template(TEMPLATE.read_text(), GRAMINE_VARS))
    sgx = manifest["sgx"]
    assert sgx["debug"] is False
    assert sgx["remote_attestation"] == "dcap"
    assert f"file:{GRAMINE_VARS['site_packages']}/" in sgx["trusted_files"]
    assert "allowed_files" not in sgx  # nothing unmeasured is readable
    text = json.dumps(manifest)
    assert "insecure__" not in text
    data = next(m for m in manifest["fs"]["mounts"] if m["path"] == "/data")
    assert (data["type"], data["key_name"]) == ("encrypted", "_sgx_mrenclave")
    assert manifest["loader"]["argv"][1:4] == ["-m", "confide", "serve"]
    assert manifest["libos"]["entrypoint"] == GRAMINE_VARS["entrypoint"]


def test_manifest_renderer_is_strict() -> None:
    vars_ = dict(GRAMINE_VARS)
    del vars_["data_dir"]
    with pytest.raises(ValueError, match="data_dir"):
        render_manifest_template(TEMPLATE.read_text(), vars_)
    with pytest.raises(ValueError, match="only"):
        render_manifest_template("{% if x %}a{% endif %}", {})


def test_gramine_mr_signer_is_the_sgx_rule() -> None:
    key = rsa.generate_private_key(public_exponent=3, key_size=3072).public_key()
    want = hashlib.sha256(key.public_numbers().n.to_bytes(384, "little")).digest()
    assert sgx_mr_signer(key) == want
    with pytest.raises(ValueError, match="exponent 3"):
        sgx_mr_signer(rsa.generate_private_key(public_exponent=65537, key_size=3072).public_key())


def test_cli_measures_the_gramine_packaging(release, tmp_path) -> None:
    key = rsa.generate_private_key(public_exponent=3, key_size=3072)
    pem = tmp_path / "enclave-key.pub.pem"
    pem.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    args = ["measure", "--package-root", str(release), "--json", "--gramine-template",
            str(TEMPLATE), "--gramine-signer", str(pem)]
    for name, value in GRAMINE_VARS.items():
        args += ["-D", f"{name}={value}"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    gramine = {p["packaging"]: p for p in json.loads(res.output)["packagings"]}["gramine-sgx"]
    assert gramine["enclave_info"]["mr_signer"] == sgx_mr_signer(key.public_key()).hex()
    assert int(gramine["artifacts"]["confide_trusted_files"]) > 100
    assert len(gramine["artifacts"]["manifest_sha256"]) == 64
    res = CliRunner().invoke(app, args[:-4])  # template without its variables
    assert res.exit_code == 2 and "undefined" in res.output
