"""The execution worker process: pull → run → report, heart-beating meanwhile.

Started by ``confide serve`` (or on another host). Its credentials arrive on
standard input (CBOR) so no key is written to disk; it talks to the scheduler
over mutual TLS under the platform CA.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Any

import cbor2
import grpc

from ..api.scheduler import staged_from_proto
from ..config import Limits
from ..rpc._gen import confide_v1_pb2 as v1
from ..rpc._gen import confide_v1_pb2_grpc as v1_grpc
from ..rpc._gen import teaclave_common_pb2 as common
from ._runner import Outcome, TaskRunner

__all__ = ["Worker", "WorkerConfig", "main"]

_log = logging.getLogger("confide.worker")
_PULL_WAIT_MS = 5000
_FIRST_HEARTBEAT_S = 0.5


@dataclass(frozen=True)
class WorkerConfig:
    scheduler: str
    executor_id: str
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes
    server_name: str = "localhost"
    slots: int = 4  # tasks one worker runs at the same time
    blob_store_port: int | None = None  # loopback allowed to this port only
    fusion_dir: str | None = None
    file_roots: tuple[str, ...] = ()
    extra_loopback_ports: tuple[int, ...] = ()  # loopback allowed on these ports too

    def to_cbor(self) -> bytes:
        return cbor2.dumps(self.__dict__)

    @classmethod
    def from_cbor(cls, data: bytes) -> WorkerConfig:
        fields = cbor2.loads(data)
        fields["file_roots"] = tuple(fields.get("file_roots", ()))
        fields["extra_loopback_ports"] = tuple(fields.get("extra_loopback_ports", ()))
        return cls(**fields)


def secure_channel(cfg: WorkerConfig) -> grpc.Channel:
    creds = grpc.ssl_channel_credentials(root_certificates=cfg.ca_pem,
                                         private_key=cfg.key_pem, certificate_chain=cfg.cert_pem)
    return grpc.secure_channel(cfg.scheduler, creds, options=[
        ("grpc.ssl_target_name_override", cfg.server_name),
        ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ])


def _result_proto(outcome: Outcome) -> common.TaskResult:
    if outcome.ok:
        return common.TaskResult(Ok=common.TaskOutputs(
            return_value=outcome.return_value, tags_map=outcome.tags_map, log=outcome.log))
    return common.TaskResult(Err=common.TaskFailure(reason=outcome.reason))


class Worker:
    def __init__(self, channel: grpc.Channel, executor_id: str, runner: TaskRunner,
                 *, slots: int = 1) -> None:
        self._stub = v1_grpc.SchedulerStub(channel)
        self._id = executor_id
        self._runner = runner
        self._slots = max(1, slots)
        self.stopping = threading.Event()
        self._pulls: set[grpc.Future] = set()
        self._pulls_lock = threading.Lock()

    def stop(self) -> None:
        """Stop pulling; idle slots' long polls are cancelled at once."""
        self.stopping.set()
        with self._pulls_lock:
            pulls = list(self._pulls)
        for pull in pulls:
            pull.cancel()

    def serve_forever(self) -> None:
        """Run ``slots`` pull loops: one worker executes that many tasks at once."""
        loops = [threading.Thread(target=self._loop, name=f"slot-{i}", daemon=True)
                 for i in range(self._slots)]
        for t in loops:
            t.start()
        # stop() (SIGTERM) cancels the idle polls; tasks still running are
        # abandoned and fail over through the scheduler's lease handling.
        self.stopping.wait()
        for t in loops:
            t.join(timeout=1.0)

    def _loop(self) -> None:
        while not self.stopping.is_set():
            pull = self._stub.PullTask.future(
                v1.PullTaskRequest(executor_id=self._id, wait_ms=_PULL_WAIT_MS),
                timeout=_PULL_WAIT_MS / 1000 + 10)
            with self._pulls_lock:
                self._pulls.add(pull)
            if self.stopping.is_set():  # stop() ran before the poll was visible to it
                pull.cancel()
            try:
                resp = pull.result()
            except grpc.FutureCancelledError:
                continue
            except grpc.RpcError as e:
                if not self.stopping.is_set():
                    _log.warning("pull failed: %s", e.code())
                    self.stopping.wait(0.5)
                continue
            finally:
                with self._pulls_lock:
                    self._pulls.discard(pull)
            if resp.has_task:
                self._execute(staged_from_proto(resp.task))

    def _execute(self, staged: dict[str, Any]) -> None:
        task_id = staged["task_id"]
        cancel = threading.Event()
        done = threading.Event()
        wake = threading.Event()
        outcome: list[Outcome] = []

        def run() -> None:
            try:
                outcome.append(self._runner.run(staged, cancel))
            finally:
                done.set()
                wake.set()

        threading.Thread(target=run, name=f"task-{task_id}", daemon=True).start()
        # Short tasks finish before the first heartbeat is due; the lease made
        # the task Running already, and the executor timeout is far longer.
        done.wait(_FIRST_HEARTBEAT_S)
        pending: grpc.Future | None = None
        while not done.is_set():
            if pending is None:
                pending = self._stub.Heartbeat.future(
                    v1.HeartbeatRequest(executor_id=self._id, status=common.Executing,
                                        task_id=task_id), timeout=120)
                pending.add_done_callback(lambda _f: wake.set())
            wake.wait()
            wake.clear()
            if pending.done():
                try:
                    stop = pending.result().command == common.Stop
                except grpc.RpcError as e:
                    _log.warning("heartbeat failed: %s", e.code())
                    done.wait(0.5)
                    stop = False
                pending = None
                if stop:
                    _log.info("task %s canceled; stopping it", task_id)
                    cancel.set()
                    done.wait()
                    return
        if pending is not None:
            pending.cancel()
        result = outcome[0] if outcome else Outcome(ok=False, reason="worker error")
        if result.cancelled:
            return
        for attempt in range(5):
            try:
                self._stub.UpdateTaskResult(v1.UpdateTaskResultRequest(
                    executor_id=self._id, task_id=task_id, result=_result_proto(result)),
                    timeout=30)
                return
            except grpc.RpcError as e:
                _log.warning("reporting %s failed (%s), retrying", task_id, e.code())
                self.stopping.wait(0.2 * (attempt + 1))


def build_runner(cfg: WorkerConfig, limits: Limits) -> TaskRunner:
    from ..executors.builtin import BuiltinExecutor
    from ..executors.python import PythonExecutor
    from ..executors.wasm import WasmExecutor
    from ._staging import Stager
    from .file_agent import FileAgent, UrlPolicy

    executors: dict[str, Any] = {"builtin": BuiltinExecutor(limits), "wamr": WasmExecutor(limits),
                                 "mesapy": PythonExecutor(limits=limits)}
    policy = UrlPolicy.embedded(blob_store_port=cfg.blob_store_port, fusion_dir=cfg.fusion_dir,
                                file_roots=cfg.file_roots,
                                extra_loopback_ports=cfg.extra_loopback_ports)
    return TaskRunner(executors, Stager(FileAgent(policy, limits), limits), limits)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(message)s")
    cfg = WorkerConfig.from_cbor(sys.stdin.buffer.read())
    worker = Worker(secure_channel(cfg), cfg.executor_id, build_runner(cfg, Limits()),
                    slots=cfg.slots)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    _log.info("executor %s pulling from %s", cfg.executor_id, cfg.scheduler)
    worker.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
