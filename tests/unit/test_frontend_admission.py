"""The frontend admits a caller whose user record is cached on the event loop, without a
database hop, and leaves every other case (and every refusal's audit entry) to ``_admit``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from confide.errors import Code, ServiceError
from confide.services._identity import Principal
from confide.services.access_control import AccessControl
from confide.services.frontend import Frontend

from ._auth_support import IP_A, Auth, make_auth


@pytest.fixture
def auth(tmp_path: Path) -> Auth:
    return make_auth(f"sqlite:///{tmp_path / 'db.sqlite'}")


def _call(frontend: Frontend, user_id: str, token: str, *, record_in_forward: bool = False,
          fail: bool = False) -> str:
    async def forward(who: Principal, record: Callable[[], None]) -> str:
        if fail:
            raise ServiceError(Code.NOT_FOUND, "no such task")
        if record_in_forward:
            record()  # as WaitTask does, in the hop of its last read
        return who.user_id
    return asyncio.run(frontend.run_async("get_task", user_id, token, IP_A, forward))


def test_a_cached_caller_is_admitted_without_the_database_path(auth: Auth) -> None:
    frontend = Frontend(auth.service, AccessControl(), auth.audit)
    token = auth.service.login("admin", "teaclave", ip=IP_A)
    assert _call(frontend, "admin", token) == "admin"  # the first call caches the user
    admitted: list[str] = []
    slow = frontend._admit
    frontend._admit = lambda *a: admitted.append(a[1]) or slow(*a)  # type: ignore[method-assign]
    assert _call(frontend, "admin", token) == "admin"
    assert admitted == []


@pytest.mark.parametrize("forge", [lambda t: t[:-3] + "AAA" if t[-3:] != "AAA" else t[:-3] + "BBB",
                                   lambda t: ""])
def test_a_refused_caller_goes_the_audited_path(auth: Auth, forge) -> None:  # type: ignore[no-untyped-def]
    frontend = Frontend(auth.service, AccessControl(), auth.audit)
    token = auth.service.login("admin", "teaclave", ip=IP_A)
    _call(frontend, "admin", token)  # cached
    with pytest.raises(ServiceError) as e:
        _call(frontend, "admin", forge(token))
    assert e.value.code is Code.UNAUTHENTICATED
    entries = auth.audit.query("authenticate to get_task", 5)
    assert entries and entries[0].result is False


@pytest.mark.parametrize("record_in_forward", [False, True])
def test_an_async_call_is_audited_once_whether_or_not_it_records_itself(
        auth: Auth, record_in_forward: bool) -> None:
    frontend = Frontend(auth.service, AccessControl(), auth.audit)
    token = auth.service.login("admin", "teaclave", ip=IP_A)
    for _ in range(3):
        _call(frontend, "admin", token, record_in_forward=record_in_forward)
    with pytest.raises(ServiceError):
        _call(frontend, "admin", token, fail=True)
    messages = [e.message for e in auth.audit.query("get_task", 10)]
    assert messages.count("get_task") == 3
    assert [m for m in messages if m != "get_task"] == [
        'get_task:status: NotFound, message: "no such task"']
