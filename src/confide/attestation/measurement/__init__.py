"""Measurements of confide's own code: what enclave_info lists for a build.

``package_measurement`` hashes the installed ``confide`` package (the sim
MRENCLAVE/MRTD); ``measure_release`` computes, for each packaging (sim, Gramine
SGX, TDX and SNP confidential VMs), what can be computed of the identity an
auditor signs into enclave_info (``confide measure``).
"""

from ._package import package_measurement
from ._release import PACKAGINGS, ReleaseMeasurement, measure_release

__all__ = ["PACKAGINGS", "ReleaseMeasurement", "measure_release", "package_measurement"]
