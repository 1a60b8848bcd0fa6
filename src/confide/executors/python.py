"""The ``mesapy`` executor: Teaclave's Python contract on sandboxed CPython 3.

Teaclave ran Python 2.7 functions in MesaPy inside SGX (spec §5.7). confide runs
the same contract on real CPython 3 with numpy, one fresh sandbox process per
run (``_sandbox``: bubblewrap namespaces, seccomp, rlimits, an fd protocol).

Contract, as a function author sees it (details in
``docs/compatibility-python.md``):

* the payload is source text defining ``entrypoint(argv)``; ``argv`` is the
  flattened argument list (spec §5.2) as Python 3 ``str`` values;
* ``teaclave_open(name, "rb" | "wb")`` (also ``from teaclave import open``);
* the returned ``str`` is the result; ``None`` gives ``""``; any exception gives
  ``MESAPY_EXEC_ERROR``; more than 20 480 UTF-8 bytes gives
  ``MESAPY_ERROR_BUFFER_TOO_SHORT`` (all *Finished + Ok*, spec Q17);
* a limit (time, CPU, memory, output size), a seccomp kill or a crash ends the
  task *Finished + Err* with a ``Runtime Error: ...`` reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..config import Limits
from ._args import flatten_arguments
from ._base import FunctionError, Invocation
from ._sandbox import SandboxConfig, SandboxJob, discover, run_sandbox

__all__ = [
    "MESAPY_ERROR_BUFFER_TOO_SHORT",
    "MESAPY_EXEC_ERROR",
    "MESAPY_RESULT_LIMIT",
    "PythonExecutor",
]

MESAPY_EXEC_ERROR = "MESAPY_EXEC_ERROR"
MESAPY_ERROR_BUFFER_TOO_SHORT = "MESAPY_ERROR_BUFFER_TOO_SHORT"
#: Largest result in UTF-8 bytes; MesaPy's result buffer (spec §5.7).
MESAPY_RESULT_LIMIT = 20480

# Teaclave's Debug names, for "function not available: (Type, Executor)" (spec §5.6).
_TYPE_NAMES = {"builtin": "Builtin", "python": "Python", "wamr": "WAMR"}


class PythonExecutor:
    """Runs ``executor_type == "python"`` functions for the ``mesapy`` executor.

    Args:
        limits: caps for the sandbox (``Limits.python_*``, ``max_log_lines``).
        config: where the sandbox's files come from; discovered on first use
            when omitted (``SandboxUnavailable`` if bubblewrap is missing:
            the executor never runs a function unsandboxed).
        clock: monotonic clock for the wall-clock limit.
    """

    name = "mesapy"

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        config: SandboxConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = limits if limits is not None else Limits()
        self._config = config
        self._clock = clock

    def sandbox_config(self) -> SandboxConfig:
        """The sandbox configuration, discovering it on first use.

        Raises:
            SandboxUnavailable: the sandbox cannot run on this host.
        """
        if self._config is None:
            self._config = discover()
        return self._config

    def run(self, invocation: Invocation) -> str:
        """Run the function; return its result string.

        Raises:
            FunctionError: *Finished + Err* (wrong executor type, a sandbox
                limit or crash, sandbox unavailable).
            CancelledError: ``invocation.cancel`` was set.
        """
        spec = invocation.function
        if spec.executor_type != "python":
            kind = _TYPE_NAMES.get(spec.executor_type, spec.executor_type)
            raise FunctionError(f"function not available: ({kind}, MesaPy)")
        job = SandboxJob(
            payload=spec.payload,
            argv=flatten_arguments(invocation.arguments),
            save_log=invocation.arguments.get("save_log") == "true",
        )
        result = run_sandbox(
            self.sandbox_config(),
            self._limits,
            job,
            invocation.io,
            log=invocation.log,
            cancel=invocation.cancel,
            clock=self._clock,
        )
        if result.state == "exec_error":
            return MESAPY_EXEC_ERROR
        if result.state == "too_long" or len(result.value.encode("utf-8")) > MESAPY_RESULT_LIMIT:
            return MESAPY_ERROR_BUFFER_TOO_SHORT
        return result.value
