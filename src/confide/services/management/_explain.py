"""Errors that say what to do: Teaclave's status and text, plus the cause in detail.

Teaclave's clients match its messages (spec §1.7), so the message stays Teaclave's;
the cause (which argument, which participant, which executor) goes into the
error's :class:`~confide.errors.ErrorDetail`. Every function here is pure: it
is given what the caller may already see and returns the error to raise.

Executor names come from the one registry, ``confide.executor_registry``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ...config import Limits
from ...errors import Code, ServiceError, Violation
from ...executor_registry import (
    BUILTIN,
    EXECUTOR_KINDS,
    executor_names,
    function_types,
    kind_for_function_type,
)
from .._records import ArgumentSpec, DataSpec, FileRecord, TaskRecord

__all__ = [
    "arguments_error",
    "check_input_sizes",
    "executor_error",
    "executor_type_error",
    "invalid_task",
    "not_approvable",
    "not_invocable",
    "ownership_violations",
]


def input_cap(limits: Limits, executor: str) -> tuple[int, bool, str]:
    """The input cap of an executor: (bytes, per file?, the Limits field)."""
    if executor == BUILTIN.executor:  # each file a builtin reads; far below max_input_bytes
        return limits.builtin_max_input_bytes, True, "builtin_max_input_bytes"
    return limits.max_input_bytes, False, "max_input_bytes"  # every executor, all inputs


def check_input_sizes(task: TaskRecord, files: Mapping[str, FileRecord], limits: Limits) -> None:
    """Refuse assigned inputs whose declared plaintext sizes exceed the executor's cap.

    Sizes are what the owners declared (``FileRecord.plaintext_size``); inputs
    without one are not counted here (the worker still enforces the cap).

    Raises:
        ServiceError: OUT_OF_RANGE naming the input(s) and the cap.
    """
    limit, per_file, field = input_cap(limits, task.executor)
    sizes = {name: files[data_id].plaintext_size for name, data_id in task.assigned_inputs.items()
             if data_id in files and files[data_id].plaintext_size is not None}
    mib = limit / (1024 * 1024)
    if per_file:
        over = {name: size for name, size in sizes.items() if size is not None and size > limit}
        if not over:
            return
        text = f"{', '.join(sorted(over))} over {mib:g} MiB"
        violations = [Violation(f"inputs.{n}", f"{s} bytes > {limit} bytes per input file")
                      for n, s in sorted(over.items())]
    else:
        total = sum(s for s in sizes.values() if s is not None)
        if total <= limit:
            return
        text = f"{total} bytes in total over {mib:g} MiB"
        violations = [Violation(f"inputs.{n}", f"{s} bytes") for n, s in sorted(sizes.items())]
    raise ServiceError(
        Code.OUT_OF_RANGE, f"input too large for executor {task.executor}: {text}"
    ).with_detail("INPUT_TOO_LARGE", *violations,
                  hint=f"executor {task.executor} accepts at most {limit} bytes of input"
                       f"{' per file' if per_file else ' in total'} (Limits.{field})")


def _names(items: Iterable[str]) -> str:
    return ", ".join(sorted(items)) or "none"


def executor_error(name: str) -> ServiceError:
    """CreateTask with an unknown executor: Teaclave's code (13), the valid names."""
    valid = executor_names()
    kind = kind_for_function_type(name)
    runs_on = kind.executor if kind is not None else None
    hint = (f"functions of executor type {name} run on executor {runs_on}: "
            f"create the task with executor {runs_on}" if runs_on and runs_on != name
            else f"use one of: {', '.join(valid)}")
    return ServiceError(
        Code.INTERNAL, f"Unsupported executor: {name} (executors: {', '.join(valid)})"
    ).with_detail("UNKNOWN_EXECUTOR", Violation(
        "executor", f"unknown executor {name!r}; the executors are {', '.join(valid)}"),
        hint=hint)


def executor_type_error(name: str) -> ServiceError:
    """RegisterFunction with an unknown executor type: Teaclave's code (13), the valid types."""
    valid = function_types()
    typed = [k.function_type for k in EXECUTOR_KINDS
             if k.executor == name and k.function_type != name]
    hint = (f"{name} is a task executor; its functions have executor type {typed[0]}"
            if typed else f"use one of: {', '.join(valid)}")
    return ServiceError(
        Code.INTERNAL, f"Invalid executor type: {name} (executor types: {', '.join(valid)})"
    ).with_detail("UNKNOWN_EXECUTOR_TYPE", Violation(
        "executor_type", f"unknown executor type {name!r}; the types are {', '.join(valid)}"),
        hint=hint)


def invalid_task(*violations: Violation, reason: str, hint: str = "") -> ServiceError:
    """Teaclave's ``3 invalid task`` with its causes."""
    return ServiceError(Code.INVALID_ARGUMENT, "invalid task").with_detail(
        reason, *violations, hint=hint)


def arguments_error(supplied: Iterable[str], arguments: Iterable[ArgumentSpec]
                    ) -> ServiceError | None:
    """The error for supplied argument keys that differ from the overwritable ones.

    Fixed arguments (``allow_overwrite`` false) may not be supplied (spec §3.7.2).
    """
    given = set(supplied)
    overwritable = {a.key for a in arguments if a.allow_overwrite}
    fixed = {a.key for a in arguments if not a.allow_overwrite}
    if given == overwritable:
        return None
    violations = [Violation(f"arguments.{key}", "missing: the function requires this argument")
                  for key in sorted(overwritable - given)]
    for key in sorted(given - overwritable):
        text = ("fixed by the function's owner; it cannot be given" if key in fixed
                else "unknown: the function has no argument of this name")
        violations.append(Violation(f"arguments.{key}", text))
    reason = "UNKNOWN_ARGUMENT" if given - overwritable else "MISSING_ARGUMENT"
    return invalid_task(*violations, reason=reason,
                        hint=f"the function takes the arguments: {_names(overwritable)}")


def ownership_violations(kind: str, declared: Iterable[DataSpec],
                         given: Iterable[str]) -> list[Violation]:
    """What is wrong with a CreateTask ownership list (``kind``: inputs or outputs)."""
    declared = list(declared)
    names = {d.name for d in declared}
    required = {d.name for d in declared if not d.optional}
    given_set = set(given)
    field = f"{kind}_ownership"
    out = [Violation(f"{field}.{n}", f"missing: the function requires this {kind[:-1]}")
           for n in sorted(required - given_set)]
    out += [Violation(f"{field}.{n}", f"unknown: the function's {kind} are {_names(names)}")
            for n in sorted(given_set - names)]
    return out


def not_approvable(task: TaskRecord) -> ServiceError:
    """Teaclave's ``2 failed to approve task``, for a participant: why not."""
    error = ServiceError.unknown("failed to approve task")
    missing = task.unassigned()
    if task.status.value >= 2:  # Approved and later
        return error.with_detail("WRONG_STATE", Violation(
            "task", f"the task is {task.status.label}: approvals are given before it runs"))
    return error.with_detail("DATA_NOT_ASSIGNED", *(
        Violation(f"data.{name}", "not assigned yet by " + _names(_owners(task, name)))
        for name in missing), hint="every data slot is assigned before anyone approves")


def not_invocable(task: TaskRecord) -> ServiceError:
    """Teaclave's ``2 failed to invoke task``, for the creator: everything that is missing."""
    error = ServiceError.unknown("failed to invoke task")
    if task.status.value >= 3:  # Staged and later
        return error.with_detail("WRONG_STATE", Violation(
            "task", f"the task is {task.status.label}: it was invoked already"))
    if task.rejections:
        return error.with_detail("REJECTED", *(
            Violation(f"rejections.{uid}", f"rejected by {uid}: {reason or '(no reason given)'}")
            for uid, reason in sorted(task.rejections.items())),
            hint="a rejection stands until its participant approves the task")
    violations = [Violation(f"data.{name}", "not assigned yet by " + _names(_owners(task, name)))
                  for name in task.unassigned()]
    violations += [Violation(f"approvals.{uid}", f"{uid} has not approved")
                   for uid in task.waiting_for()]
    reason = "DATA_NOT_ASSIGNED" if task.unassigned() else "NOT_APPROVED"
    waiting = task.waiting_for()
    hint = f"waiting for approval from: {', '.join(waiting)}" if waiting else ""
    return error.with_detail(reason, *violations, hint=hint)


def _owners(task: TaskRecord, name: str) -> list[str]:
    table: Mapping[str, list[str]] = (task.inputs_ownership if name in task.inputs_ownership
                                      else task.outputs_ownership)
    return table.get(name, [])
