"""What a release's attested identity should be, per packaging (``confide measure``).

An auditor runs this on the release they audited (the installed wheel's
``confide`` directory, or a source tree) and signs the resulting
``enclave_info.toml`` without trusting the operator. What can be computed here,
and what cannot:

* ``sim-sgx`` / ``sim-tdx``: complete except MRSIGNER. MRENCLAVE/MRTD are
  :func:`package_measurement` (SHA-256 / SHA-384 of the package files, the
  sim attester's rule); the sim's RTMRs, MRCONFIGID, MROWNER(CONFIG), MRSEAM
  and MRSERVICETD are zero. The sim MRSIGNER is SHA-256 of the node's sim
  signing key (its SubjectPublicKeyInfo, ``<data>/sim-attester/signer``),
  which exists only on the node: give it to get ``mr_signer``.
* ``gramine-sgx``: MRSIGNER is computed from the enclave signing key (SHA-256
  of the RSA-3072 modulus, little-endian, exponent 3: the SGX rule). MRENCLAVE
  is NOT computable here: it measures Gramine's own binaries and the layout
  ``gramine-sgx-sign`` builds, and Gramine's tools are not installable from
  Debian or PyPI. What is computed instead is the manifest rendered from
  ``deploy/gramine/confide.manifest.template`` (its SHA-256) and the SHA-256 of
  every confide file that the manifest's ``sgx.trusted_files`` will pin; run
  ``gramine-sgx-sign`` on the same inputs to get MRENCLAVE.
* ``tdx-cvm`` / ``snp-cvm``: the launch measurement covers the VM image
  (firmware, kernel, initrd, command line), not confide alone; see
  ``docs/real-tee.md`` for the recipe. Only the package measurement of the
  code inside the image is given here.

Reading files is the only I/O; the same inputs always give the same output.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..appraisal import TDX_MEASUREMENT_KEYS
from ._package import code_files, package_dir, package_measurement

__all__ = [
    "PACKAGINGS",
    "PackagingMeasurement",
    "ReleaseMeasurement",
    "measure_release",
    "render_manifest_template",
    "sgx_mr_signer",
    "sim_mr_signer",
]

PACKAGINGS = ("sim-sgx", "sim-tdx", "gramine-sgx", "tdx-cvm", "snp-cvm")
_TOKEN = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_UNSUPPORTED = re.compile(r"\{%|\{#")


@dataclass(frozen=True)
class PackagingMeasurement:
    """The attested identity of one packaging.

    Attributes:
        packaging: one of :data:`PACKAGINGS`.
        enclave_info: the enclave_info keys that could be computed (lower-case hex).
        missing: enclave_info keys this packaging needs that could NOT be computed,
            each with the reason.
        artifacts: other reproducible values (manifest hash, package hash, ...).
    """

    packaging: str
    enclave_info: Mapping[str, str]
    missing: Mapping[str, str] = field(default_factory=dict)
    artifacts: Mapping[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """True when every enclave_info key of this packaging was computed."""
        return not self.missing


@dataclass(frozen=True)
class ReleaseMeasurement:
    """All packagings of one release (the measured package directory)."""

    package_root: Path
    packagings: tuple[PackagingMeasurement, ...]

    def get(self, packaging: str) -> PackagingMeasurement:
        """The measurement of ``packaging``."""
        for p in self.packagings:
            if p.packaging == packaging:
                return p
        raise KeyError(packaging)


def render_manifest_template(template: str, variables: Mapping[str, str]) -> str:
    """Render a Gramine manifest template that uses only ``{{ name }}`` substitutions.

    Strict: an unknown variable, or any Jinja statement (``{% %}``, ``{# #}``),
    is an error, so what this renders is what ``gramine-manifest`` renders from
    the same variables (``gramine.libos`` and ``gramine.runtimedir()`` are
    passed like the others).

    Raises:
        ValueError: an undefined variable or an unsupported construct.
    """
    if _UNSUPPORTED.search(template):
        raise ValueError("manifest template: only {{ variable }} substitutions are supported")
    undefined = sorted({m for m in _TOKEN.findall(template) if m not in variables})
    if undefined:
        raise ValueError(f"manifest template: undefined variables {undefined}")
    return _TOKEN.sub(lambda m: variables[m.group(1)], template)


def sgx_mr_signer(public_key: rsa.RSAPublicKey) -> bytes:
    """SGX MRSIGNER of an enclave signing key: SHA-256 of its modulus, little-endian.

    Raises:
        ValueError: not the RSA-3072, exponent 3 key SGX requires.
    """
    numbers = public_key.public_numbers()
    if public_key.key_size != 3072 or numbers.e != 3:
        raise ValueError("an SGX enclave signing key is RSA-3072 with exponent 3")
    return hashlib.sha256(numbers.n.to_bytes(384, "little")).digest()


def sim_mr_signer(signer_public_key_der: bytes) -> bytes:
    """The sim MRSIGNER: SHA-256 of the sim signing key's SubjectPublicKeyInfo DER."""
    key = serialization.load_der_public_key(signer_public_key_der)
    spki = key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()


def _trusted_files(root: Path, mount: str) -> dict[str, str]:
    return {f"file:{mount}/{rel}": hashlib.sha256(path.read_bytes()).hexdigest()
            for rel, path in code_files(root)}


def _sim(root: Path, sim_signer_der: bytes | None) -> tuple[PackagingMeasurement, ...]:
    mr_enclave = package_measurement("sha256", root).hex()
    sgx: dict[str, str] = {"mr_enclave": mr_enclave}
    missing = {}
    if sim_signer_der is not None:
        sgx["mr_signer"] = sim_mr_signer(sim_signer_der).hex()
    else:
        missing["mr_signer"] = "the sim signing key lives on the node: pass its public key"
    zero = "00" * 48
    tdx = {"mrtd": package_measurement("sha384", root).hex(),
           **{k: zero for k in TDX_MEASUREMENT_KEYS[1:] if k != "mr_servicetd"}}
    return (PackagingMeasurement("sim-sgx", sgx, missing),
            PackagingMeasurement("sim-tdx", tdx, artifacts={
                "note": "quote v5 / TD report 1.5 adds mr_servicetd = " + zero}))


def _gramine(root: Path, template: str | None, variables: Mapping[str, str] | None,
             signer: rsa.RSAPublicKey | None) -> PackagingMeasurement:
    info: dict[str, str] = {}
    missing = {"mr_enclave": "needs gramine-sgx-sign (Gramine's binaries are measured too; "
                             "not installable here)"}
    artifacts: dict[str, str] = {}
    if signer is not None:
        info["mr_signer"] = sgx_mr_signer(signer).hex()
    else:
        missing["mr_signer"] = "pass the enclave signing public key (RSA-3072, e = 3)"
    if template is not None:
        if variables is None:
            raise ValueError("a manifest template needs its variables")
        manifest = render_manifest_template(template, variables)
        artifacts["manifest_sha256"] = hashlib.sha256(manifest.encode()).hexdigest()
        site = variables.get("site_packages")
        if site:
            files = _trusted_files(root, f"{site}/confide")
            listing = "".join(f"{h}  {uri}\n" for uri, h in sorted(files.items()))
            artifacts["confide_trusted_files"] = str(len(files))
            artifacts["confide_trusted_files_sha256"] = hashlib.sha256(
                listing.encode()).hexdigest()
    return PackagingMeasurement("gramine-sgx", info, missing, artifacts)


def _cvm(root: Path, kind: str) -> PackagingMeasurement:
    key = "mrtd" if kind == "tdx-cvm" else "measurement"
    return PackagingMeasurement(kind, {}, {key: "the launch measurement covers the whole VM "
                                                "image: docs/real-tee.md"},
                                {"package_sha384": package_measurement("sha384", root).hex()})


def measure_release(
    package_root: Path | None = None,
    *,
    sim_signer_der: bytes | None = None,
    gramine_template: str | None = None,
    gramine_variables: Mapping[str, str] | None = None,
    gramine_signer: rsa.RSAPublicKey | None = None,
) -> ReleaseMeasurement:
    """Measure a release for every packaging in :data:`PACKAGINGS`.

    Args:
        package_root: the ``confide`` package directory to measure (default:
            the installed one).
        sim_signer_der: the node's sim signing public key (DER SPKI), for the
            sim MRSIGNER.
        gramine_template: text of ``deploy/gramine/confide.manifest.template``.
        gramine_variables: its variables (as given to ``gramine-manifest -D``,
            plus ``gramine.libos`` and ``gramine.runtimedir()``).
        gramine_signer: the enclave signing public key, for the Gramine MRSIGNER.
    """
    root = (package_root or package_dir()).resolve()
    return ReleaseMeasurement(root, (
        *_sim(root, sim_signer_der),
        _gramine(root, gramine_template, gramine_variables, gramine_signer),
        _cvm(root, "tdx-cvm"), _cvm(root, "snp-cvm")))
