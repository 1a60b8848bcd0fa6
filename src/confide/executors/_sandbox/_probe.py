"""The start-up check: one real sandbox must run, unprivileged, before any task.

The executor never runs a function with less isolation than it promises: if
the host cannot give a sandbox its own uid, build its view, create user
namespaces or start bwrap, the first use of the executor raises
:class:`SandboxUnavailable` naming the cause, and so does every task after it.
The check runs the whole path a task takes (ids, view, bwrap, harness, rlimits,
seccomp) with a function that reports its effective capabilities, which must be
none. A success is remembered for the process; a failure is checked again on
the next use.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from typing import BinaryIO

from ...config import Limits
from ...invocation import InvalidInputName, InvalidOutputName
from ._bwrap import SandboxConfig
from ._errors import SandboxFailure, SandboxUnavailable
from ._runner import SandboxJob, run_sandbox

__all__ = ["check_sandbox"]

_PROBE = b"""
def entrypoint(argv):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return line.split()[1]
    return "unknown"
"""
_NO_CAPABILITIES = "0000000000000000"
_checked: set[tuple[SandboxConfig, int, int]] = set()
_checked_lock = threading.Lock()


class _NoFiles:
    def input_names(self) -> Collection[str]:
        return ()

    def output_names(self) -> Collection[str]:
        return ()

    def open_input(self, name: str) -> BinaryIO:
        raise InvalidInputName(name)

    def create_output(self, name: str) -> BinaryIO:
        raise InvalidOutputName(name)


def check_sandbox(config: SandboxConfig, limits: Limits) -> None:
    """Run one sandbox as a task would; return once one has run without capabilities.

    Raises:
        SandboxUnavailable: the sandbox cannot run here, or ran with capabilities.
    """
    key = (config, limits.python_sandbox_uid_base, limits.python_sandbox_uid_count)
    with _checked_lock:
        if key in _checked:
            return
    job = SandboxJob(payload=_PROBE, argv=(), save_log=False)
    try:
        result = run_sandbox(config, limits, job, _NoFiles(), log=None, cancel=threading.Event())
    except SandboxFailure as e:
        reason = e.reason.removeprefix("Runtime Error: ")
        detail = f": {e.detail}" if e.detail and e.cause == "start" else ""
        raise SandboxUnavailable(f"test sandbox: {reason}{detail}") from e
    if result.state != "ok" or result.value != _NO_CAPABILITIES:
        raise SandboxUnavailable(f"test sandbox: ran with capabilities {result.value!r}")
    with _checked_lock:
        _checked.add(key)

