"""A worker retries its report until the scheduler acknowledges it (issue 12 item 4):
storage trouble on the scheduler's side is retried, a refusal is final, and a
stopping worker stops retrying."""

from __future__ import annotations

import threading
import time
from typing import Any

import grpc
import pytest

from confide.execution import _worker
from confide.execution._worker import Worker
from confide.rpc._gen import confide_v1_pb2 as v1


class _Error(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return f"test {self._code.name}"


class _Stub:
    def __init__(self, failures: list[grpc.StatusCode]) -> None:
        self.failures = failures
        self.calls = 0

    def UpdateTaskResult(self, report: Any, timeout: float) -> None:
        self.calls += 1
        if self.failures:
            raise _Error(self.failures.pop(0))


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch) -> Worker:
    monkeypatch.setattr(_worker, "_MAX_REPORT_PAUSE_S", 0.02)
    channel = grpc.insecure_channel("127.0.0.1:9")  # never used: the stub is replaced
    w = Worker(channel, "executor-1", runner=None)  # type: ignore[arg-type]
    return w


REPORT = v1.UpdateTaskResultRequest(executor_id="executor-1", task_id="task-1")


def test_storage_trouble_is_retried_past_the_old_five_attempts(worker: Worker) -> None:
    codes = [grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE,
             grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED] * 3
    stub = _Stub(list(codes))
    worker._stub = stub  # type: ignore[assignment]
    worker._report(REPORT)
    assert stub.calls == len(codes) + 1  # acknowledged at last


@pytest.mark.parametrize("code", [grpc.StatusCode.PERMISSION_DENIED,
                                  grpc.StatusCode.INVALID_ARGUMENT,
                                  grpc.StatusCode.FAILED_PRECONDITION])
def test_a_refusal_is_not_retried(worker: Worker, code: grpc.StatusCode) -> None:
    stub = _Stub([code, code])
    worker._stub = stub  # type: ignore[assignment]
    worker._report(REPORT)
    assert stub.calls == 1


def test_a_stopping_worker_stops_retrying(worker: Worker) -> None:
    stub = _Stub([grpc.StatusCode.UNAVAILABLE] * 10_000)
    worker._stub = stub  # type: ignore[assignment]
    done = threading.Event()
    t = threading.Thread(target=lambda: (worker._report(REPORT), done.set()))
    t.start()
    while stub.calls < 3:
        time.sleep(0.01)
    worker.stop()
    assert done.wait(5)
    t.join()
