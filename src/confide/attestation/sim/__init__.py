"""SIM ONLY: an attester whose quotes anyone with its state directory can forge.

``SimAttester`` emits real SGX v3 / TDX v4-v5 quote formats with matching
collateral, signed by a local stand-in for Intel's PKI (``_pki``: root, PCK CA,
PCK, TCB signing, attestation and signer keys, persisted 0600; ``_der``: the few
DER encoders its PCK extension needs) and quoting enclave (``_quote``), so
development runs the same verification path as hardware. It gives no protection against the
operator; every use logs :data:`confide.attestation.SIM_WARNING`. Its root is
trusted only through :class:`confide.attestation.UnsafeTrustSimRoot`.

Kept out of the production surface on purpose: ``confide.attestation`` exports
this package as the module ``sim`` and none of its names.
"""

from ._attester import SIM_MEASURE_ROOT_ENV, SimAttester, node_sim_attester

__all__ = ["SIM_MEASURE_ROOT_ENV", "SimAttester", "node_sim_attester"]
