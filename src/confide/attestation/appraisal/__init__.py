"""Appraisal: verifiers, the policy, accepted measurements and trust roots.

Pure: evidence, collateral and ``now`` in; a verified result or an
``AppraisalError`` subclass naming the reason out. ``_dcap`` verifies SGX/TDX
quotes with dcap-qvl against an explicit root (``_dcap_errors`` maps its
messages to typed errors), ``_snp`` verifies SEV-SNP reports and VCEK/VLEK
chains, ``_policy`` decides (roots, measurements, TCB status, debug, age),
``_enclave_info`` reads and verifies the auditors' list of accepted
measurements, ``_roots`` pins Intel's and AMD's roots. ``_collateral_fetch``
(PCCS/PCS with a cache) is the one I/O module here, and no verifier imports it.
"""

from ._collateral_fetch import CollateralFetcher
from ._dcap import TDX_MEASUREMENT_KEYS, verify_dcap_quote
from ._enclave_info import (
    EnclaveInfo,
    generate_enclave_info,
    sign_enclave_info,
    verify_enclave_info,
)
from ._policy import SIM_WARNING, AppraisalPolicy, AppraisalResult, UnsafeTrustSimRoot
from ._roots import (
    AMD_ARK_GENOA_DER,
    AMD_ARK_MILAN_DER,
    AMD_ARK_TURIN_DER,
    AMD_ARKS,
    INTEL_SGX_ROOT_CA_DER,
)
from ._snp import SnpChain, verify_snp_chain, verify_snp_report

__all__ = [
    "AMD_ARKS",
    "AMD_ARK_GENOA_DER",
    "AMD_ARK_MILAN_DER",
    "AMD_ARK_TURIN_DER",
    "INTEL_SGX_ROOT_CA_DER",
    "SIM_WARNING",
    "TDX_MEASUREMENT_KEYS",
    "AppraisalPolicy",
    "AppraisalResult",
    "CollateralFetcher",
    "EnclaveInfo",
    "SnpChain",
    "UnsafeTrustSimRoot",
    "generate_enclave_info",
    "sign_enclave_info",
    "verify_dcap_quote",
    "verify_enclave_info",
    "verify_snp_chain",
    "verify_snp_report",
]
