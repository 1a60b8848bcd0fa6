"""Running one staged task inside a worker: stage inputs, pick the executor,
run, seal outputs, build the result (spec §5).

Kept free of RPC so it can be tested directly. The worker process around it
(``_worker``) pulls tasks, heart-beats and reports.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..config import Limits
from ..crypto.approvals import ApprovalError
from ..executor_registry import executor_kind, function_not_available
from ..executors import (
    CancelledError,
    Executor,
    FunctionError,
    FunctionSpec,
    Invocation,
    apply_caps,
)
from ..executors.python import MESAPY_EXEC_ERROR
from ..staged import StagedTask
from ._approval import ApprovalGate, Approved, ReceiptSigner, refusal_reason
from ._staging import Stager

__all__ = ["Outcome", "TaskRunner"]

_log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What the worker reports: Ok (return value, tags, log) or Err (reason)."""

    ok: bool
    return_value: bytes = b""
    tags_map: dict[str, bytes] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)  # kept on failure too (partial)
    reason: str = ""
    detail: str = ""  # a failure's cause beyond ``reason`` (confide.v1 ReviewTask)
    cancelled: bool = False
    receipt: bytes = b""  # signed by the worker's attested key (crypto/receipts.py)


class TaskRunner:
    def __init__(self, executors: Mapping[str, Executor], stager: Stager, limits: Limits, *,
                 gate: ApprovalGate | None = None,
                 receipts: ReceiptSigner | None = None) -> None:
        """``gate``: checks signed approvals (without one, a task that carries
        approvals is refused); ``receipts``: signs a receipt for every task."""
        self._executors = dict(executors)
        self._stager = stager
        self._limits = limits
        self._gate = gate
        self._receipts = receipts

    def close(self) -> None:
        """Release what executors keep between tasks (pre-started sandboxes)."""
        for executor in self._executors.values():
            close = getattr(executor, "close", None)
            if close is not None:
                close()

    def run(self, staged: StagedTask, cancel: threading.Event) -> Outcome:
        started = time.time()
        approved: Approved | None = None
        try:
            approved = self._check_approvals(staged)
        except ApprovalError as e:
            # Nothing was fetched or decrypted: the gate runs before staging.
            _log.warning("task %s refused: %s", staged.task_id, e)
            outcome = Outcome(ok=False, reason=refusal_reason(e),
                              detail="the task differs from what its signers approved, or "
                                     "the approvals expired or are missing")
            return self._signed(staged, approved, outcome, started, consumed=False)
        outcome = self._run_checked(staged, cancel)
        return self._signed(staged, approved, outcome, started, consumed=True)

    def _check_approvals(self, staged: StagedTask) -> Approved | None:
        if self._gate is not None:
            return self._gate.check(staged)
        if staged.approval is not None:
            raise ApprovalError("no-gate", "this worker cannot check signed approvals")
        return None

    def _signed(self, staged: StagedTask, approved: Approved | None, outcome: Outcome,
                started: float, *, consumed: bool) -> Outcome:
        if self._receipts is not None and not outcome.cancelled:
            outcome.receipt = self._receipts.sign(
                staged, approved, ok=outcome.ok, reason=outcome.reason, consumed=consumed,
                return_value=outcome.return_value, tags=outcome.tags_map, started=started,
                ended=time.time())
        return outcome

    def _run_checked(self, staged: StagedTask, cancel: threading.Event) -> Outcome:
        log: list[str] = []  # what the function logged, kept when the task fails
        returned: list[str] = []  # the function's result, when it returned one
        try:
            return self._run(staged, cancel, log, returned)
        except CancelledError:
            return Outcome(ok=False, reason="Task Canceled by the user", cancelled=True)
        except FunctionError as e:
            detail = ""
            if returned and returned[0] == MESAPY_EXEC_ERROR:
                detail = ("the function raised an exception (MESAPY_EXEC_ERROR) before it "
                          "wrote its outputs; with save_log its traceback is in the log")
            return Outcome(ok=False, reason=e.reason, log=log, detail=detail)

    def _run(self, staged: StagedTask, cancel: threading.Event, log: list[str],
             returned: list[str]) -> Outcome:
        # Only the pairs of one registry row run (spec §3.6).
        kind = executor_kind(staged.executor)
        executor = self._executors.get(staged.executor)
        if kind is None or kind.function_type != staged.executor_type or executor is None:
            raise FunctionError(function_not_available(staged.executor_type, staged.executor))
        try:
            arguments = json.loads(staged.function_arguments)
        except ValueError as e:
            raise FunctionError("Cannot deserialize arguments") from e
        if not isinstance(arguments, dict):
            raise FunctionError("Cannot deserialize arguments")
        # The caps (apply_caps below) fail the task past max_log_*; the lines
        # logged until then are kept in ``log`` for the failed task's record.
        log_sink = log.append if arguments.get("save_log") == "true" else None
        with self._stager.stage(staged.task_id, staged.inputs, staged.outputs) as io:
            # Every executor gets capped outputs and log (Limits.max_output_*,
            # max_log_*); staging caps inputs and the private area. Past a cap:
            # CapExceeded, the area is removed, nothing is uploaded.
            invocation = apply_caps(Invocation(
                task_id=staged.task_id,
                function=FunctionSpec(staged.function_id, staged.function_name,
                                      staged.executor_type, staged.function_payload),
                arguments=arguments, io=io, log=log_sink, cancel=cancel), self._limits)
            value = executor.run(invocation)
            returned.append(value)
            if cancel.is_set():
                raise CancelledError()
            encoded = value.encode("utf-8")
            if len(encoded) > self._limits.max_return_value_bytes:
                raise FunctionError(
                    f"return value too large: {len(encoded)} > "
                    f"{self._limits.max_return_value_bytes} bytes")
            tags = io.finish()
        return Outcome(ok=True, return_value=encoded, tags_map=tags, log=log)
