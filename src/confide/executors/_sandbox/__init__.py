"""The Python function sandbox: bubblewrap + seccomp + rlimits + an fd protocol.

Private to :mod:`confide.executors`; :mod:`confide.executors.python` is its
only user. See ``docs/sandbox.md`` for the layers and what each one stops.
"""

from ._bwrap import SandboxConfig, discover
from ._errors import ProtocolViolation, SandboxFailure, SandboxUnavailable
from ._launch import Prestarted
from ._pool import SandboxPool
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
    "discover",
    "run_sandbox",
]
