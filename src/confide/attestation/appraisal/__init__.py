"""Appraisal: verifiers, the policy, accepted measurements and trust roots.

Pure: evidence, collateral and ``now`` in; a verified result or an
``AppraisalError`` out. Collateral fetching (PCCS/PCS) is the one I/O module
here, and no verifier imports it.
"""
