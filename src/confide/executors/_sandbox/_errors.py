"""Errors of the Python sandbox.

All are :class:`~confide.executors._base.FunctionError` subclasses: each ends
the task *Finished + Err* with ``reason`` as the client-visible text, and
``cause`` as a short machine-readable tag used by tests and logs.
"""

from __future__ import annotations

from ...invocation import FunctionError

__all__ = ["ProtocolViolation", "SandboxFailure", "SandboxUnavailable"]


class SandboxFailure(FunctionError):
    """The sandbox ended without a normal result (a limit, a crash, a kill).

    ``cause`` is one of ``time``, ``cpu``, ``memory``, ``seccomp``, ``output``,
    ``input``, ``crash``, ``start``, ``protocol``. ``detail`` is what the
    sandbox's stderr said when it failed to start (for logs, never for clients).
    """

    def __init__(self, cause: str, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.cause = cause
        self.detail = detail


class ProtocolViolation(SandboxFailure):
    """The sandbox sent a frame the worker refuses (only a hostile function can)."""

    def __init__(self, detail: str) -> None:
        super().__init__("protocol", "Runtime Error: sandbox protocol violation", detail)


class SandboxUnavailable(FunctionError):
    """The sandbox cannot be started here; the executor refuses to run at all."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"Runtime Error: python sandbox unavailable ({detail})")
        self.detail = detail
