"""The Python function sandbox: bubblewrap + seccomp + rlimits + an fd protocol.

Private to :mod:`confide.executors`; :mod:`confide.executors.python` is its
only user. See ``docs/sandbox.md`` for the layers and what each one stops.
"""

from ._bwrap import SandboxConfig, discover, installed_packages
from ._errors import ProtocolViolation, SandboxFailure, SandboxUnavailable
from ._launch import Prestarted, address_space_bytes
from ._pool import SandboxPool
from ._probe import check_sandbox
from ._protocol import Result
from ._runner import SandboxJob, run_sandbox

__all__ = [
    "Prestarted",
    "ProtocolViolation",
    "Result",
    "SandboxConfig",
    "SandboxFailure",
    "SandboxJob",
    "SandboxPool",
    "SandboxUnavailable",
    "address_space_bytes",
    "check_sandbox",
    "discover",
    "installed_packages",
    "run_sandbox",
]
