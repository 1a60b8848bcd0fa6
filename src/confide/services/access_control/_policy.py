"""Layer-1 authorization: may this role call this API at all (spec §3.2)?

The model and policy are Teaclave's casbin files with two additions:
confide.v1's API names (granted like get_task), and get_task/approve_task for
FunctionOwner — the owner of a private function is a participant who must
approve, which Teaclave's policy made impossible (docs/compatibility.md).
The policy is static, so decisions are cached.
"""

from __future__ import annotations

import logging
import threading
from importlib import resources

import casbin

logging.getLogger("casbin").setLevel(logging.WARNING)  # it logs the whole policy at INFO

__all__ = ["AccessControl"]


class AccessControl:
    def __init__(self) -> None:
        pkg = resources.files(__package__)
        model = str(pkg / "model.conf")
        policy = str(pkg / "policy.csv")
        self._enforcer = casbin.Enforcer(model, policy)
        self._cache: dict[tuple[str, str], bool] = {}
        self._lock = threading.Lock()

    def authorize_api(self, api_role: str, api: str) -> bool:
        key = (api_role, api)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        with self._lock:  # casbin's enforcer is not documented as thread-safe
            allowed = bool(self._enforcer.enforce(api_role, api))
        self._cache[key] = allowed
        return allowed
