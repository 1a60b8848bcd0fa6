"""Hardware attesters (the I/O side): Gramine's ``/dev/attestation`` and configfs-tsm.

``GramineAttester`` produces SGX quotes inside a Gramine enclave;
``ConfigfsTsmAttester`` TDX quotes or SEV-SNP reports (with the VCEK/VLEK from
the host's certificate table) through Linux's ``/sys/kernel/config/tsm/report``.
The sim attester, which protects nothing, is apart in :mod:`confide.attestation.sim`.
"""

from ._hardware import ConfigfsTsmAttester, GramineAttester

__all__ = ["ConfigfsTsmAttester", "GramineAttester"]
