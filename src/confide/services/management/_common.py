"""Helpers shared by the management service's parts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ...config import Limits
from ...errors import Code, ServiceError
from ...storage import Database
from .._identity import Principal
from .._notify import Notifier
from .._records import FunctionRecord

__all__ = ["Context", "allowlisted", "check_len", "internal"]


@dataclass
class Context:
    db: Database
    notifier: Notifier
    limits: Limits
    clock: Callable[[], float]


def internal(message: str) -> ServiceError:
    """Teaclave answers malformed input with INTERNAL and a debug-style text."""
    return ServiceError(Code.INTERNAL, message)


def check_len(value: str | bytes, cap: int, what: str) -> None:
    if len(value) > cap:
        raise ServiceError(Code.OUT_OF_RANGE, f"{what} too long: {len(value)} > {cap}")


def allowlisted(function: FunctionRecord, who: Principal) -> bool:
    """Allow-list match: the user id, or (data owners) the attribute (spec Q3 fix)."""
    allow = function.user_allowlist
    if who.user_id in allow:
        return True
    return who.role.is_data_owner_like and who.role.attribute in allow
