"""The ``mesapy`` executor: Teaclave's Python contract on sandboxed CPython 3.

Teaclave ran Python 2.7 functions in MesaPy inside SGX (spec §5.7). confide runs
the same contract on real CPython 3 with numpy, one fresh sandbox process per
run (``_sandbox``: a host uid of its own, bubblewrap namespaces, seccomp,
rlimits, an fd protocol).
With ``prestart=N`` up to N of those processes are started (hardened, numpy
imported) before their task arrives; each still runs one task only.

Contract, as a function author sees it (details in
``docs/compatibility-python.md``):

* the payload is source text defining ``entrypoint(argv)``; ``argv`` is the
  flattened argument list (spec §5.2) as Python 3 ``str`` values;
* ``teaclave_open(name, "rb" | "wb")`` (also ``from teaclave import open``);
* the returned ``str`` is the result; ``None`` gives ``""``; any exception gives
  ``MESAPY_EXEC_ERROR`` (with ``save_log`` its traceback is in the log); more
  than 20 480 UTF-8 bytes gives
  ``MESAPY_ERROR_BUFFER_TOO_SHORT`` (all *Finished + Ok*, spec Q17);
* a limit (time, CPU, memory, output size), a seccomp kill or a crash ends the
  task *Finished + Err* with a ``Runtime Error: ...`` reason.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType

from ..config import Limits
from ..executor_registry import MESAPY, function_not_available
from ..invocation import FunctionError, Invocation
from ..mesapy import sandbox_program
from ._args import flatten_arguments
from ._sandbox import (
    Prestarted,
    SandboxConfig,
    SandboxJob,
    SandboxPool,
    address_space_bytes,
    check_sandbox,
    discover,
    installed_packages,
    run_sandbox,
)

__all__ = [
    "MESAPY_ERROR_BUFFER_TOO_SHORT",
    "MESAPY_EXEC_ERROR",
    "MESAPY_RESULT_LIMIT",
    "PythonExecutor",
    "with_traceback",
]

MESAPY_EXEC_ERROR = "MESAPY_EXEC_ERROR"
MESAPY_ERROR_BUFFER_TOO_SHORT = "MESAPY_ERROR_BUFFER_TOO_SHORT"
#: Largest result in UTF-8 bytes; MesaPy's result buffer (spec §5.7).
MESAPY_RESULT_LIMIT = 20480

# Runs the payload as the harness would (same globals, same file name), and on an
# exception writes its traceback to stderr -- a captured log line per line, so
# only when the log is captured -- then raises it again: the result is still
# MESAPY_EXEC_ERROR (spec Q17). The wrapper's own frame is left out.
_TRACEBACK_WRAPPER = """\
def _confide_traceback(exc):
    import sys, traceback
    try:
        tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
        sys.stderr.write("".join(traceback.format_exception(type(exc), exc, tb)))
        sys.stderr.flush()
    except BaseException:
        pass

def _confide_load(source):
    import linecache
    text = source.decode("utf-8", "replace")
    linecache.cache["<function>"] = (len(text), None, text.splitlines(True), "<function>")
    namespace = {"__name__": "function", "__builtins__": __builtins__}
    try:
        exec(compile(source, "<function>", "exec"), namespace)
    except BaseException as exc:
        _confide_traceback(exc)
        raise
    return namespace

_confide_namespace = _confide_load(%r)

def entrypoint(argv):
    function = _confide_namespace.get("entrypoint")
    if function is None:
        import sys
        sys.stderr.write("the function defines no entrypoint(argv)\\n")
        raise KeyError("entrypoint")
    try:
        return function(argv)
    except BaseException as exc:
        _confide_traceback(exc)
        raise
"""


def with_traceback(payload: bytes) -> bytes:
    """``payload`` wrapped so that an exception's traceback reaches the log."""
    return (_TRACEBACK_WRAPPER % (payload,)).encode()


class PythonExecutor:
    """Runs ``executor_type == "python"`` functions for the ``mesapy`` executor.

    Args:
        limits: caps for the sandbox (``Limits.python_*``, ``max_log_lines``).
        config: where the sandbox's files come from; discovered on first use
            when omitted. Either way the first use runs a test sandbox
            (``SandboxUnavailable`` if bubblewrap is missing, the worker cannot
            give sandboxes their own host uid, or the test sandbox fails: the
            executor never runs a function with less isolation).
        clock: monotonic clock for the wall-clock limit.
        prestart: how many sandboxes to keep started ahead of their task
            (at most ``Limits.python_max_prestarted``; 0: a cold sandbox per
            run). The pool starts on the first :meth:`run` (or :meth:`start`);
            a run that finds no pre-started sandbox ready runs cold. Call
            :meth:`close` to kill the idle ones.
        always_log: capture the function's lines (and an exception's
            traceback) even without ``save_log`` -- for ``confide function
            test``, where the developer runs their own code on their own data.
            Workers leave it off: there the task's ``save_log`` argument, which
            every participant approved, decides.

    Raises:
        ValueError: ``prestart`` is negative or above the cap, or
            ``python_tmp_bytes`` is not below ``python_memory_bytes``.
    """

    name = MESAPY.executor

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        config: SandboxConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        prestart: int = 0,
        always_log: bool = False,
    ) -> None:
        self._always_log = always_log
        self._limits = limits if limits is not None else Limits()
        cap = self._limits.python_max_prestarted
        if not 0 <= prestart <= cap:
            raise ValueError(f"prestart must be between 0 and {cap} (python_max_prestarted)")
        address_space_bytes(self._limits)  # ValueError if /tmp takes the whole memory budget
        self._config = config
        self._checked: SandboxConfig | None = None
        self._clock = clock
        self._prestart = prestart
        self._pool: SandboxPool | None = None
        self._pool_lock = threading.Lock()
        self._closed = False

    def sandbox_config(self) -> SandboxConfig:
        """The sandbox configuration, discovered and checked on first use.

        The check runs one sandbox exactly as a task would (its own host uid,
        no capabilities); until it passes, every run raises.

        Raises:
            SandboxUnavailable: the sandbox cannot run, fully isolated, on this host.
        """
        if self._checked is None:
            config = (self._config if self._config is not None
                      else discover(installed_packages()))
            check_sandbox(config, self._limits)
            self._checked = config
        return self._checked

    @property
    def prestart(self) -> int:
        """How many sandboxes this executor keeps started ahead of their task."""
        return self._prestart

    def start(self) -> None:
        """Start the pre-started sandboxes now rather than on the first run.

        Raises:
            SandboxUnavailable: the sandbox cannot run on this host.
        """
        self._sandbox_pool()

    def wait_prestarted(self, timeout: float) -> bool:
        """Start the pool if needed; wait until all ``prestart`` sandboxes are
        ready (for tests and benchmarks). False on timeout or without a pool.

        Raises:
            SandboxUnavailable: the start-up check failed (see :meth:`sandbox_config`).
        """
        pool = self._sandbox_pool()
        return pool is not None and pool.wait_ready(timeout)

    def prestarted_pids(self) -> list[int]:
        """bwrap pids of the idle pre-started sandboxes (for tests)."""
        pool = self._pool
        return pool.idle_pids() if pool is not None else []

    def close(self) -> None:
        """Kill the idle pre-started sandboxes; later runs are cold.

        Runs in progress finish normally.
        """
        with self._pool_lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def __enter__(self) -> PythonExecutor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _sandbox_pool(self) -> SandboxPool | None:
        if self._prestart == 0:
            return None
        config = self.sandbox_config()
        limits = self._limits
        with self._pool_lock:
            if self._pool is None and not self._closed:
                self._pool = SandboxPool(lambda: Prestarted.start(config, limits), self._prestart)
            return self._pool

    def run(self, invocation: Invocation) -> str:
        """Run the function; return its result string.

        Raises:
            FunctionError: *Finished + Err* (wrong executor type, a sandbox
                limit or crash, sandbox unavailable).
            CancelledError: ``invocation.cancel`` was set.
        """
        spec = invocation.function
        if spec.executor_type != MESAPY.function_type:
            raise FunctionError(function_not_available(spec.executor_type, MESAPY.executor))
        save_log = self._always_log or invocation.arguments.get("save_log") == "true"
        try:  # a MesaPy-mode function: its translation, under the Python 2 runtime
            payload = sandbox_program(spec.payload) or spec.payload
        except ValueError:
            return MESAPY_EXEC_ERROR
        job = SandboxJob(
            # With the log captured, an exception's traceback goes into it too.
            payload=with_traceback(payload) if save_log else payload,
            argv=flatten_arguments(invocation.arguments),
            save_log=save_log,
        )
        result = run_sandbox(
            self.sandbox_config(),
            self._limits,
            job,
            invocation.io,
            log=invocation.log,
            cancel=invocation.cancel,
            clock=self._clock,
            pool=self._sandbox_pool(),
        )
        if result.state == "exec_error":
            return MESAPY_EXEC_ERROR
        if result.state == "too_long" or len(result.value.encode("utf-8")) > MESAPY_RESULT_LIMIT:
            return MESAPY_ERROR_BUFFER_TOO_SHORT
        return result.value
