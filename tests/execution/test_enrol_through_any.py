"""Enrolment through a list of key services (``--keys A,B``): the order, the
turn passed on a transport failure, a refusal that is final, the deadline."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from confide.execution import _enrol
from confide.execution._enrol import (
    EnrolmentRefused,
    KeyServicesUnreachable,
    enrol_through_any,
    key_service_addresses,
)


class _Unavailable(grpc.RpcError):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "connection refused"


@pytest.mark.parametrize(("text", "expected"), [
    ("a:1", ("a:1",)),
    ("a:1,b:2", ("a:1", "b:2")),
    (" a:1 , [::1]:17781 ", ("a:1", "[::1]:17781")),
])
def test_addresses_keep_their_order(text: str, expected: tuple[str, ...]) -> None:
    assert key_service_addresses(text) == expected


@pytest.mark.parametrize(("text", "named"), [
    ("nowhere", "'nowhere'"),
    ("a:1,", "''"),
    ("a:1,b", "'b'"),
    ("a:0", "'a:0'"),
    ("a:65536", "'a:65536'"),
    (":1", "':1'"),
    (",".join(f"h{i}:1" for i in range(17)), "not 17"),
])
def test_bad_lists_are_refused_naming_the_entry(text: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        key_service_addresses(text)


def _scripted(monkeypatch: pytest.MonkeyPatch, outcomes: dict[str, list[Any]]) -> list[str]:
    """``enrol`` replaced: each address answers its outcomes in turn."""
    calls: list[str] = []

    def fake(*, key_service: str, **_: Any) -> Any:
        calls.append(key_service)
        outcome = outcomes[key_service].pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    monkeypatch.setattr(_enrol, "enrol", fake)
    return calls


def test_first_answer_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _scripted(monkeypatch, {"a:1": ["creds-a"], "b:2": ["creds-b"]})
    assert enrol_through_any(("a:1", "b:2"), deadline_s=0) == ("a:1", "creds-a")
    assert calls == ["a:1"]


def test_an_unreachable_key_service_passes_the_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _scripted(monkeypatch, {"a:1": [_Unavailable()], "b:2": ["creds-b"]})
    assert enrol_through_any(("a:1", "b:2"), deadline_s=0) == ("b:2", "creds-b")
    assert calls == ["a:1", "b:2"]


def test_a_refusal_is_final(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _scripted(monkeypatch, {"a:1": [EnrolmentRefused("node-revoked")],
                                    "b:2": ["creds-b"]})
    with pytest.raises(EnrolmentRefused, match="node-revoked") as caught:
        enrol_through_any(("a:1", "b:2"), deadline_s=5)
    assert not isinstance(caught.value, KeyServicesUnreachable)
    assert calls == ["a:1"]  # the other key service shares the policy: not asked


def test_rounds_repeat_until_one_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_enrol.time, "sleep", lambda _s: None)
    calls = _scripted(monkeypatch, {"a:1": [OSError("refused"), OSError("refused"), "a"],
                                    "b:2": [_Unavailable(), _Unavailable()]})
    assert enrol_through_any(("a:1", "b:2"), deadline_s=60) == ("a:1", "a")
    assert calls == ["a:1", "b:2", "a:1", "b:2", "a:1"]


def test_no_answer_by_the_deadline_names_every_key_service(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _scripted(monkeypatch, {"a:1": [OSError("no route to host")], "b:2": [_Unavailable()]})
    with pytest.raises(KeyServicesUnreachable) as caught:
        enrol_through_any(("a:1", "b:2"), deadline_s=0)  # one round only
    message = str(caught.value)
    assert "a:1: no route to host" in message
    assert "b:2: UNAVAILABLE: connection refused" in message
