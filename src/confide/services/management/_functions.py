"""Functions: register, update, get, usage stats, delete, disable, list (spec §3.6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from ...errors import Code, ServiceError, Violation
from ...executor_registry import MESAPY, is_function_type
from ...mesapy import PYTHON2, PYTHON3, TranslationError, resolve
from ...storage import Txn
from .._idempotency import IdempotencyKey, run_idempotent
from .._identity import Principal
from .._names import name_problem
from .._records import ArgumentSpec, DataSpec, FunctionRecord, IdKind, new_id, parse_id
from ._common import Context, allowlisted, check_len
from ._explain import executor_type_error

__all__ = ["CODE_REVIEW_MODES", "FunctionLists", "FunctionSpecInput", "Functions", "UsageStats"]

#: ``FunctionRecord.code_review`` values: who may read the payload in a review.
CODE_REVIEW_MODES = ("open", "confidential")


@dataclass
class FunctionSpecInput:
    """The fields of RegisterFunction/UpdateFunction, already off the wire."""

    name: str
    description: str
    executor_type: str
    public: bool
    payload: bytes
    arguments: list[ArgumentSpec]
    inputs: list[DataSpec]
    outputs: list[DataSpec]
    user_allowlist: list[str]
    usage_quota: int
    #: Came through Teaclave's API: a python payload is MesaPy's Python 2.7 unless it
    #: declares otherwise (confide.mesapy); confide.v1 means Python 3.
    teaclave_api: bool = False


class UsageStats(NamedTuple):
    """A function's quota (-1: unlimited) and how often it was invoked."""

    quota: int
    usage: int


class FunctionLists(NamedTuple):
    """ListFunctions' answer: the user's own functions, and those the user may use."""

    registered: list[str]
    allowed: list[str]


def _invalid_function() -> ServiceError:
    return ServiceError(Code.INVALID_ARGUMENT, "invalid function id")


def _check_mode(mode: str) -> None:
    if mode not in CODE_REVIEW_MODES:
        raise ServiceError(Code.INVALID_ARGUMENT, f"invalid code review mode: {mode[:40]}")


def _dialect(spec: FunctionSpecInput, max_bytes: int) -> tuple[str, bytes]:
    """(dialect, staged translation) of a python function; (PYTHON3, b"") otherwise."""
    if spec.executor_type != MESAPY.function_type:
        return PYTHON3, b""
    try:
        resolved = resolve(spec.payload, PYTHON2 if spec.teaclave_api else PYTHON3)
    except TranslationError as e:
        raise ServiceError(Code.INVALID_ARGUMENT, str(e)) from None
    check_len(resolved.translation, max_bytes, "translated function payload")
    return resolved.dialect, resolved.translation


class Functions:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def _validate(self, spec: FunctionSpecInput, *, new_name: bool) -> None:
        """Caps, and (``new_name``) the naming rules for a name not stored yet:
        a function name identifies the function to the parties who approve it
        (and a builtin to the executor)."""
        lim = self._ctx.limits
        if not is_function_type(spec.executor_type):
            raise executor_type_error(spec.executor_type)
        check_len(spec.payload, lim.max_function_payload_bytes, "function payload")
        check_len(spec.name, lim.max_id_chars, "function name")
        problem = name_problem(spec.name, lim.max_id_chars) if new_name and spec.name else None
        if problem is not None:
            raise ServiceError(Code.INVALID_ARGUMENT, f"invalid function name: {problem}")
        check_len(spec.description, lim.max_function_arguments_bytes, "function description")
        for items, what in ((spec.arguments, "arguments"), (spec.inputs, "inputs"),
                            (spec.outputs, "outputs")):
            if len(items) > lim.max_list_items:
                raise ServiceError(Code.OUT_OF_RANGE, f"too many {what}")
            for name, text, _flag in items:
                check_len(name, lim.max_id_chars, f"{what} name")
                check_len(text, lim.max_function_arguments_bytes, f"{what} text")
        if len(spec.user_allowlist) > lim.max_list_items:
            raise ServiceError(Code.OUT_OF_RANGE, "too many allow-list entries")
        for uid in spec.user_allowlist:
            check_len(uid, lim.max_id_chars, "allow-list entry")

    def _get(self, function_id: str) -> FunctionRecord:
        fid = parse_id(function_id)
        if fid is None or not fid.startswith(IdKind.FUNCTION + "-"):
            raise _invalid_function()
        with self._ctx.db.read() as txn:
            record = FunctionRecord.load(txn, fid)
        if record is None:
            raise _invalid_function()
        return record

    def register(self, who: Principal, spec: FunctionSpecInput,
                 code_review: str = "confidential", idem: IdempotencyKey | None = None) -> str:
        """Register; Teaclave's RPC keeps the code confidential, confide.v1's opens it."""
        self._validate(spec, new_name=True)
        _check_mode(code_review)
        dialect, translation = _dialect(spec, 2 * self._ctx.limits.max_function_payload_bytes)
        fid = new_id(IdKind.FUNCTION)

        def insert(txn: Txn) -> str:
            record = FunctionRecord(
                id=fid, seq=txn.next_seq("functions"), name=spec.name,
                description=spec.description, executor_type=spec.executor_type,
                public=spec.public, payload=spec.payload, arguments=spec.arguments,
                inputs=spec.inputs, outputs=spec.outputs, owner=who.user_id,
                user_allowlist=list(dict.fromkeys(spec.user_allowlist)),
                usage_quota=spec.usage_quota if spec.usage_quota >= 0 else None,
                code_review=code_review, dialect=dialect, translation=translation,
            )
            record.insert(txn)
            return fid

        return run_idempotent(self._ctx.db, idem, insert)

    def set_code_review(self, who: Principal, function_id: str, mode: str) -> None:
        """The owner decides whether task participants may read the code (owner only)."""
        _check_mode(mode)
        fid = parse_id(function_id)
        if fid is None or not fid.startswith(IdKind.FUNCTION + "-"):
            raise _invalid_function()
        with self._ctx.db.write() as txn:
            record = FunctionRecord.load(txn, fid, lock=True)
            if record is None:
                raise _invalid_function()
            if record.owner != who.user_id:
                raise ServiceError.permission_denied().with_detail(
                    "NOT_FUNCTION_OWNER", Violation("function_id", "only the function's owner "
                                                    "decides who may read its code"))
            record.code_review = mode
            record.save(txn)

    def update(self, who: Principal, function_id: str, spec: FunctionSpecInput) -> str:
        fid = parse_id(function_id)
        if fid is None or not fid.startswith(IdKind.FUNCTION + "-"):
            raise _invalid_function()
        # translated before the write transaction, which a translation must not hold open
        dialect, translation = _dialect(spec, 2 * self._ctx.limits.max_function_payload_bytes)
        with self._ctx.db.write() as txn:
            record = FunctionRecord.load(txn, fid, lock=True)
            if record is None:
                raise _invalid_function()
            if record.owner != who.user_id:  # PlatformAdmin not exempt (Q8, replicated)
                raise ServiceError.permission_denied()
            self._validate(spec, new_name=spec.name != record.name)
            record.dialect, record.translation = dialect, translation
            record.name, record.description = spec.name, spec.description
            record.executor_type, record.public = spec.executor_type, spec.public
            record.payload, record.arguments = spec.payload, spec.arguments
            record.inputs, record.outputs = spec.inputs, spec.outputs
            record.user_allowlist = list(dict.fromkeys(spec.user_allowlist))
            record.usage_quota = spec.usage_quota if spec.usage_quota >= 0 else None
            record.save(txn)
        return fid

    def get(self, who: Principal, function_id: str) -> FunctionRecord:
        record = self._get(function_id)
        if record.public or who.is_admin or record.owner == who.user_id:
            return record
        if allowlisted(record, who):
            record.payload = b""
            record.user_allowlist = []
            return record
        raise ServiceError.permission_denied()

    def usage_stats(self, who: Principal, function_id: str) -> UsageStats:
        record = self._get(function_id)
        if not (record.public or who.is_admin or record.owner == who.user_id  # Q12 fix
                or allowlisted(record, who)):
            raise ServiceError.permission_denied()
        quota = -1 if record.usage_quota is None else record.usage_quota
        return UsageStats(quota, record.usage)

    def delete(self, who: Principal, function_id: str) -> None:
        record = self._get(function_id)
        if record.owner != who.user_id:
            raise ServiceError.permission_denied()
        with self._ctx.db.write() as txn:
            txn.delete("functions", record.id)

    def disable(self, who: Principal, function_id: str) -> None:
        fid = parse_id(function_id)
        if fid is None or not fid.startswith(IdKind.FUNCTION + "-"):
            raise _invalid_function()
        with self._ctx.db.write() as txn:
            record = FunctionRecord.load(txn, fid, lock=True)
            if record is None:
                raise _invalid_function()
            if record.owner != who.user_id and not who.is_admin:
                raise ServiceError.permission_denied()
            record.disabled = True  # Q5 fix: CreateTask/InvokeTask refuse it
            record.user_allowlist = []
            record.save(txn)

    def list(self, who: Principal, user_id: str, user_attribute: str | None) -> FunctionLists:
        """(registered, allowed) function ids of ``user_id`` (spec §3.6, Q6/Q7/Q8 fixed).

        The lists are derived from the function records, so deleting, disabling
        or updating a function is reflected at once.
        """
        if not who.is_admin and user_id != who.user_id:
            raise ServiceError.permission_denied()
        registered: list[str] = []
        allowed: list[str] = []
        every: list[str] = []
        with self._ctx.db.read() as txn:
            for row in txn.scan("functions", order_by="seq"):
                fn = FunctionRecord.from_dict(row.body)
                every.append(fn.id)
                if fn.disabled:
                    continue
                if fn.owner == user_id:
                    registered.append(fn.id)
                if user_id in fn.user_allowlist or (
                        user_attribute is not None and user_attribute in fn.user_allowlist):
                    allowed.append(fn.id)
        if who.is_admin and (registered or allowed):
            allowed = sorted(every)
        return FunctionLists(registered, allowed)
