"""The execution worker process: pull → run → report, heart-beating meanwhile.

Started by ``confide serve`` (or on another host) with non-secret bootstrap
data on standard input (CBOR): the scheduler and key service addresses, the
platform CA certificate and the sim attester's state directory. It first
enrols (``_enrol``: attests the key service, presents its own evidence, gets a
short-lived platform-CA node certificate and the root secret, all in memory),
and only then opens its mutual-TLS channel to the scheduler.

Its log lines carry its executor id and, while it runs a task, the task id
(``confide.telemetry``); it records the ``confide_worker_*`` metrics, which
reach the server's endpoint when the supervisor enabled that.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cbor2
import grpc

from ..config import Limits
from ..executor_registry import MESAPY
from ..rpc import address_list, failover_target, staged_from_proto
from ..rpc._gen import confide_v1_pb2 as v1
from ..rpc._gen import confide_v1_pb2_grpc as v1_grpc
from ..rpc._gen import teaclave_common_pb2 as common
from ..rpc._keepalive import client_options as keepalive_client_options
from ..settings import SettingsError, section_from
from ..staged import StagedTask
from ..telemetry import configure_logging, task_context
from ..telemetry._metrics import (
    WORKER_ENROLMENTS,
    WORKER_SLOTS,
    WORKER_TASK_SECONDS,
    WORKER_TASKS,
    executor_label,
)
from ._enrol import (
    EnrolmentRefused,
    KeyServicesUnreachable,
    NodeCredentials,
    enrol_through_any,
    key_service_addresses,
)
from ._private_tmpfs import (
    AreaKind,
    area_tmpfs_bytes,
    mount_private_area,
    release_private_area,
)
from ._runner import Outcome, TaskRunner

__all__ = ["Worker", "WorkerConfig", "main"]

_log = logging.getLogger("confide.worker")
_PULL_WAIT_MS = 5000
_FIRST_HEARTBEAT_S = 0.5
_STOP_TASKS_S = 4.0  # on SIGTERM, how long the stopped tasks may take to end (the
# supervisor kills the worker after 5 s)
_MAX_REPORT_PAUSE_S = 5.0
_ORPHAN_CHECK_S = 0.5
_PR_SET_PDEATHSIG = 1
#: Codes after which a report is sent again (anything else is a final refusal).
_RETRIED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                      grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN,
                      grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED,
                      grpc.StatusCode.CANCELLED})
_ENROL_DEADLINE_S = 60.0  # keep retrying an unreachable key service this long
_RENEW_BEFORE = dt.timedelta(hours=1)  # re-enrol this long before the node certificate expires
#: Exit status of a worker whose enrolment, or whose calls, were refused (the
#: supervisor backs off).
EXIT_ENROLMENT_REFUSED = 3
_REFUSED = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
#: Exit status of a worker given bootstrap data it refuses (e.g. invalid limits).
EXIT_BAD_BOOTSTRAP = 4
#: The scheduler refused this worker (of an earlier server generation).
EXIT_REFUSED = 5
#: The supervising process died before this worker was running.
EXIT_ORPHANED = 6


@dataclass(frozen=True)
class WorkerConfig:
    """Bootstrap data: nothing secret (the worker enrols for its keys)."""

    scheduler: str
    key_service: str
    executor_id: str
    ca_pem: bytes | None  # None: trust the CA of the attested key service's grant
    sim_state_dir: str
    server_name: str = "localhost"
    slots: int = 4  # tasks one worker runs at the same time
    python_prestart: int | None = None  # pre-started Python sandboxes; None: one per slot
    blob_store_port: int | None = None  # loopback allowed to this port only
    fusion_dir: str | None = None
    file_roots: tuple[str, ...] = ()
    extra_loopback_ports: tuple[int, ...] = ()  # loopback allowed on these ports too
    log_level: str = "INFO"
    log_format: str = "human"  # or json (confide.telemetry)
    # The server's caps (the operator's [limits]): what runs here obeys the same.
    limits: Limits = field(default_factory=Limits)

    def to_cbor(self) -> bytes:
        return cbor2.dumps({**self.__dict__, "limits": asdict(self.limits)})

    @classmethod
    def from_cbor(cls, data: bytes) -> WorkerConfig:
        """Raises ``SettingsError`` for limits the settings loader would refuse."""
        fields = cbor2.loads(data)
        fields["file_roots"] = tuple(fields.get("file_roots", ()))
        fields["extra_loopback_ports"] = tuple(fields.get("extra_loopback_ports", ()))
        fields["limits"] = section_from(Limits, fields.get("limits", {}),
                                        source="worker bootstrap")
        return cls(**fields)


def secure_channel(cfg: WorkerConfig, node: NodeCredentials) -> grpc.Channel:
    """Mutual TLS to the scheduler: the platform CA is the only root; keepalive
    pings notice a lost link within seconds (``rpc._keepalive``). With several
    scheduler nodes (``--scheduler A,B``) gRPC connects to the first that answers
    and moves on when it goes away (leases live in the database, so any scheduler
    node takes the reports and heartbeats of a task another one leased)."""
    creds = grpc.ssl_channel_credentials(root_certificates=node.ca_pem,
                                         private_key=node.key_pem, certificate_chain=node.cert_pem)
    target = failover_target(address_list(cfg.scheduler))
    return grpc.secure_channel(target, creds, options=[
        ("grpc.ssl_target_name_override", cfg.server_name),
        ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        ("grpc.max_send_message_length", 64 * 1024 * 1024),
        *keepalive_client_options(),
    ])


def _result_proto(outcome: Outcome) -> common.TaskResult:
    if outcome.ok:
        return common.TaskResult(Ok=common.TaskOutputs(
            return_value=outcome.return_value, tags_map=outcome.tags_map, log=outcome.log))
    return common.TaskResult(Err=common.TaskFailure(reason=outcome.reason))


class Worker:
    def __init__(self, channel: grpc.Channel, executor_id: str, runner: TaskRunner,
                 *, slots: int = 1, renew: Any = None) -> None:
        """``renew``: optional callable returning a fresh channel when the node
        certificate is due for renewal, else None (called between pulls)."""
        self._stub = v1_grpc.SchedulerStub(channel)
        self._channel = channel
        self._id = executor_id
        self._runner = runner
        self._slots = max(1, slots)
        self._renew = renew
        self._renew_lock = threading.Lock()
        self.stopping = threading.Event()
        self.refused: str | None = None  # why the scheduler refused this executor, if it did
        self.exit_status = 0  # EXIT_REFUSED (stale generation) or EXIT_ENROLMENT_REFUSED
        self._pulls: set[grpc.Future] = set()
        self._pulls_lock = threading.Lock()
        self._cancels: set[threading.Event] = set()  # of the tasks running here
        self._busy = WORKER_SLOTS.labels("busy")
        self._free = WORKER_SLOTS.labels("free")

    def stop(self) -> None:
        """Stop pulling and stop the running tasks; idle slots' long polls are cancelled.

        The server fails (or has already failed) the tasks it leased here when
        it stops this worker (docs/operations.md, "Stopping and restarting"),
        so a task stopped here reports nothing.
        """
        self.stopping.set()
        with self._pulls_lock:
            pulls = list(self._pulls)
            cancels = list(self._cancels)
        for pull in pulls:
            pull.cancel()
        for cancel in cancels:
            cancel.set()

    def _maybe_renew(self) -> None:
        """Swap to a channel with a renewed node certificate when one is due.

        The old channel is not closed: other slots may still be heartbeating or
        reporting on it; it goes away with its last reference.
        """
        if self._renew is None:
            return
        with self._renew_lock:
            channel = self._renew()
            if channel is not None:
                self._channel = channel
                self._stub = v1_grpc.SchedulerStub(channel)

    def serve_forever(self) -> None:
        """Run ``slots`` pull loops: one worker executes that many tasks at once."""
        loops = [threading.Thread(target=self._loop, name=f"slot-{i}", daemon=True)
                 for i in range(self._slots)]
        self._free.set(self._slots)
        self._busy.set(0)
        for t in loops:
            t.start()
        # stop() (SIGTERM) cancels the idle polls and the running tasks; their
        # sandboxes are killed and their private areas removed before we return.
        self.stopping.wait()
        deadline = time.monotonic() + _STOP_TASKS_S
        for t in loops:
            t.join(timeout=max(0.0, deadline - time.monotonic()))

    def _loop(self) -> None:
        report: v1.UpdateTaskResultRequest | None = None
        while not self.stopping.is_set():
            self._maybe_renew()
            timeout = _PULL_WAIT_MS / 1000 + 10
            if report is None:
                call = self._stub.PullTask.future(
                    v1.PullTaskRequest(executor_id=self._id, wait_ms=_PULL_WAIT_MS),
                    timeout=timeout)
            else:  # the last result and the next pull in one round trip
                call = self._stub.ReportAndPull.future(
                    v1.ReportAndPullRequest(report=report, wait_ms=_PULL_WAIT_MS),
                    timeout=timeout)
            with self._pulls_lock:
                self._pulls.add(call)
            if self.stopping.is_set():  # stop() ran before the poll was visible to it
                call.cancel()
            try:
                resp = call.result()
            except (grpc.FutureCancelledError, grpc.RpcError) as e:
                if isinstance(e, grpc.RpcError) and e.code() == grpc.StatusCode.FAILED_PRECONDITION:
                    # A worker of an earlier server generation (its supervisor died):
                    # the scheduler will never serve it again.
                    _log.error("the scheduler refused this worker (%s); exiting", e.details())
                    self.refused = f"{e.code().name}: {e.details()}"
                    self.exit_status = EXIT_REFUSED
                    self.stop()
                    return
                if report is not None:
                    # Reporting twice is harmless: the scheduler ignores a result
                    # for a task no longer leased to this executor.
                    self._report(report)
                if isinstance(e, grpc.RpcError) and e.code() in _REFUSED:
                    # Revoked, or not allowed: retrying cannot help; the supervisor
                    # re-enrols a new worker (which a revoked host cannot pass).
                    self.refused = f"{e.code().name}: {e.details()}"
                    self.exit_status = EXIT_ENROLMENT_REFUSED
                    _log.error("the scheduler refused this executor (%s); exiting",
                               self.refused)
                    self.stop()
                    return
                if isinstance(e, grpc.RpcError) and not self.stopping.is_set():
                    _log.warning("pull failed: %s", e.code())
                    self.stopping.wait(0.5)
                report = None
                continue
            finally:
                with self._pulls_lock:
                    self._pulls.discard(call)
            report = self._run_slot(staged_from_proto(resp.task)) if resp.has_task else None
        if report is not None:  # finished as the worker was told to stop: still report it
            self._report(report)

    def _run_slot(self, staged: StagedTask) -> v1.UpdateTaskResultRequest | None:
        """:meth:`_execute` with the slot counted busy and the task id in the logs."""
        self._free.dec()
        self._busy.inc()
        start = time.monotonic()
        executor = executor_label(staged.executor)
        report: v1.UpdateTaskResultRequest | None = None
        outcome = "crashed"
        with task_context(staged.task_id):
            try:
                report = self._execute(staged)
                outcome = ("canceled" if report is None
                           else "ok" if report.result.WhichOneof("result") == "Ok" else "error")
            finally:
                seconds = time.monotonic() - start
                self._busy.dec()
                self._free.inc()
                WORKER_TASKS.labels(executor, outcome).inc()
                WORKER_TASK_SECONDS.labels(executor).observe(seconds)
                _log.info("task %s on %s in %.3f s", outcome, executor, seconds)
        return report

    def _execute(self, staged: StagedTask) -> v1.UpdateTaskResultRequest | None:
        """Run one task, heart-beating meanwhile; its report (None if canceled)."""
        cancel = threading.Event()
        with self._pulls_lock:
            self._cancels.add(cancel)
            if self.stopping.is_set():
                cancel.set()
        try:
            return self._supervise(staged, cancel)
        finally:
            with self._pulls_lock:
                self._cancels.discard(cancel)

    def _supervise(self, staged: StagedTask, cancel: threading.Event
                   ) -> v1.UpdateTaskResultRequest | None:
        """Run ``staged`` on a thread of its own and heart-beat until it ends."""
        task_id = staged.task_id
        done = threading.Event()
        wake = threading.Event()
        outcome: list[Outcome] = []

        def run() -> None:
            try:
                with task_context(task_id):
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
            if cancel.is_set():  # the worker is stopping
                pending.cancel()
                done.wait()
                return None
            if pending.done():
                try:
                    stop = pending.result().command == common.Stop
                except grpc.RpcError as e:
                    _log.warning("heartbeat failed: %s", e.code())
                    done.wait(0.5)
                    stop = False
                pending = None
                if stop:
                    _log.info("task canceled; stopping it")
                    cancel.set()
                    done.wait()
                    return None
        if pending is not None:
            pending.cancel()
        result = outcome[0] if outcome else Outcome(ok=False, reason="worker error")
        if result.cancelled:
            return None
        return v1.UpdateTaskResultRequest(
            executor_id=self._id, task_id=task_id, result=_result_proto(result),
            failure_log=[] if result.ok else result.log,
            failure_detail="" if result.ok else result.detail, receipt=result.receipt)

    def _report(self, report: v1.UpdateTaskResultRequest) -> None:
        """Deliver a result until the scheduler acknowledges it.

        Reports are idempotent: the scheduler records a result once and answers
        OK without recording anything when the lease is gone (reported before,
        canceled, expired), so retrying is always safe. Storage trouble on the
        scheduler's side (disk full, database locked or down) is retried with a
        growing pause for as long as this worker runs; meanwhile the lease, no
        longer renewed, runs out and the scheduler ends the task by itself.
        """
        pause = 0.2
        while True:
            try:
                self._stub.UpdateTaskResult(report, timeout=30)
                return
            except grpc.RpcError as e:
                code = e.code()
                if code not in _RETRIED:
                    _log.error("the scheduler refused the result of %s (%s): %s",
                               report.task_id, code, e.details())
                    return
                _log.warning("reporting %s failed (%s), retrying in %.1f s",
                             report.task_id, code, pause)
            if self.stopping.wait(pause):
                return
            pause = min(pause * 2, _MAX_REPORT_PAUSE_S)


def _check_python_sandbox(python: Any) -> None:
    """Run the Python executor's start-up check; say loudly if tasks will be refused.

    Runs niced (this thread and the test sandbox it starts): the worker may
    already be running tasks.
    """
    from ..executors._sandbox import SandboxUnavailable

    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    try:
        python.sandbox_config()
    except SandboxUnavailable as e:
        _log.error("Python tasks will be refused: %s", e.reason)


def build_runner(cfg: WorkerConfig, limits: Limits, *, check_python: bool = False,
                 attester: Any = None, area: AreaKind = AreaKind.DIRECTORY) -> TaskRunner:
    """The worker's executors and stager.

    ``area``: what :func:`mount_private_area` made of the private area (large
    pages make writes cheap: no write-behind thread then).

    ``check_python``: run the Python sandbox's start-up check now (on a thread
    of its own), so a host that cannot isolate functions is reported when the
    worker starts; its tasks are refused with the same reason either way.
    """
    from ..executors import ExecutorSettings, build_executors
    from ._staging import Stager
    from .file_agent import FileAgent, UrlPolicy

    # Pre-started Python sandboxes: one per slot unless configured, within the cap.
    # The pool starts with the worker's first Python task (no cost for a worker
    # that never runs one).
    prestart = cfg.slots if cfg.python_prestart is None else cfg.python_prestart
    prestart = max(0, min(prestart, limits.python_max_prestarted))
    executors = build_executors(ExecutorSettings(limits, python_prestart=prestart))
    if check_python:
        threading.Thread(target=_check_python_sandbox, args=(executors[MESAPY.executor],),
                         name="python-sandbox-check", daemon=True).start()
    policy = UrlPolicy.embedded(blob_store_port=cfg.blob_store_port, fusion_dir=cfg.fusion_dir,
                                file_roots=cfg.file_roots,
                                extra_loopback_ports=cfg.extra_loopback_ports)
    gate, receipts = None, None
    if attester is not None:  # the worker's own measurement and attested receipt key
        from ._approval import ApprovalGate, ReceiptSigner
        measured = attester.measurements
        gate = ApprovalGate(bytes.fromhex(measured.get("mr_enclave") or measured["mrtd"]),
                            time.time)
        receipts = ReceiptSigner.attested(lambda rd: attester.evidence(rd, now=_utcnow()))
    stager = Stager(FileAgent(policy, limits), limits, write_behind=area.write_behind)
    return TaskRunner(executors, stager, limits, gate=gate, receipts=receipts)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def enrol_with_retry(cfg: WorkerConfig, attester: Any, *,
                     deadline_s: float = _ENROL_DEADLINE_S) -> NodeCredentials:
    """Enrol through the first key service of ``cfg.key_service`` that answers,
    retrying transport failures until ``deadline_s``; refusals are final.

    Raises:
        EnrolmentRefused: refused, or no key service was reachable.
    """
    try:
        _, node = enrol_through_any(
            key_service_addresses(cfg.key_service), deadline_s=deadline_s,
            node_id=cfg.executor_id, attester=attester, ca_pem=cfg.ca_pem, clock=_utcnow)
    except KeyServicesUnreachable:
        raise
    except EnrolmentRefused:
        WORKER_ENROLMENTS.labels("refused").inc()
        raise
    WORKER_ENROLMENTS.labels("ok").inc()
    return node


def _die_with_parent(on_orphaned: Callable[[], None]) -> None:
    """Exit when the supervising process dies (a kill -9 of the server left its
    workers running, and they joined the next server).

    The kernel sends SIGTERM when the parent dies (``PR_SET_PDEATHSIG``); a
    thread also watches the parent pid, since that signal follows the parent
    *thread* and is not sent on every platform.
    """
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    if os.getppid() != parent or parent == 1:  # it died before the signal was armed
        on_orphaned()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_ORPHAN_CHECK_S)
        on_orphaned()

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def main() -> int:
    try:
        cfg = WorkerConfig.from_cbor(sys.stdin.buffer.read())
    except SettingsError as e:  # the server validated them: only a broken bootstrap gets here
        print(f"worker: bootstrap refused: {e}", file=sys.stderr)
        return EXIT_BAD_BOOTSTRAP
    configure_logging("json" if cfg.log_format == "json" else "human", cfg.log_level,
                      process="worker", static={"executor_id": cfg.executor_id})
    # Before any thread starts (the namespace is per thread): see _private_tmpfs.
    area = mount_private_area(area_tmpfs_bytes(cfg.slots, cfg.limits.max_task_area_bytes))
    stopping: list[Callable[[], None]] = []  # Worker.stop, once it serves

    def orphaned() -> None:  # on the orphan watch thread
        _log.error("the supervising process is gone; exiting")
        for stop in stopping:
            stop()
        if not stopping:
            release_private_area(area)
            os._exit(EXIT_ORPHANED)

    def terminate(*_: object) -> None:  # SIGTERM: the supervisor, or its death (PDEATHSIG)
        for stop in stopping:
            stop()
        if not stopping:  # still starting (enrolling): leave through the finally below,
            # which a second SIGTERM (seen when the server dies) must not cut short
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            raise SystemExit(128 + signal.SIGTERM)

    signal.signal(signal.SIGTERM, terminate)
    try:
        _die_with_parent(orphaned)
        return _serve(cfg, area, stopping)
    finally:  # an orderly exit (an orphaned one too) leaves no area behind
        release_private_area(area)


def _serve(cfg: WorkerConfig, area: AreaKind, stopping: list[Callable[[], None]]) -> int:
    """Enrol, then pull and run tasks until stopped; the exit status."""
    from ..attestation.sim import node_sim_attester

    attester = node_sim_attester(Path(cfg.sim_state_dir))
    try:
        node = enrol_with_retry(cfg, attester)
    except EnrolmentRefused as e:
        _log.error("executor %s not enrolled, exiting: %s", cfg.executor_id, e)
        return EXIT_ENROLMENT_REFUSED
    current = [node]

    def renew() -> grpc.Channel | None:
        if _utcnow() < current[0].not_after - _RENEW_BEFORE:
            return None
        try:
            current[0] = enrol_with_retry(cfg, attester)
        except EnrolmentRefused as e:
            _log.error("re-enrolment refused: %s", e)
            return None
        return secure_channel(cfg, current[0])

    runner = build_runner(cfg, cfg.limits, check_python=True, attester=attester, area=area)
    worker = Worker(secure_channel(cfg, node), cfg.executor_id, runner, slots=cfg.slots,
                    renew=renew)
    stopping.append(worker.stop)  # SIGTERM and the orphan watch stop it from now on
    _log.info("executor %s pulling from %s", cfg.executor_id, cfg.scheduler)
    try:
        worker.serve_forever()
    finally:
        runner.close()  # kills the idle pre-started sandboxes
    return worker.exit_status


if __name__ == "__main__":
    raise SystemExit(main())
