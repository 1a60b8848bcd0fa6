"""confide.telemetry: bounded labels, one-line logs, the metrics endpoint, worker metrics.

Threats: a label fed with free text or ids (a secret pasted into a reason, a
million series); a log line split by a newline in a message (a forged second
event) or a header value (``x-request-id``) injected into the logs.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import confide.telemetry as telemetry
from confide.telemetry import (
    OTHER,
    REQUEST_ID,
    BoundedLabel,
    MetricsAddressError,
    MetricsEndpoint,
    WorkerMetrics,
    configure_logging,
    parse_metrics_address,
    prepare_worker_metrics_dir,
    task_context,
    valid_request_id,
    worker_environment,
    worker_exited,
)
from confide.telemetry._metrics import REGISTRY


def test_public_surface() -> None:
    assert set(telemetry.__all__) == {
        "LOG_FORMATS", "OTHER", "REGISTRY", "REQUEST_ID", "TASK_ID", "BoundedLabel",
        "HumanFormatter", "JsonFormatter", "LogFormat", "MetricsAddressError", "MetricsEndpoint",
        "WorkerMetrics", "configure_logging", "new_request_id", "parse_metrics_address",
        "prepare_worker_metrics_dir", "reason_of", "task_context", "valid_request_id",
        "worker_environment", "worker_exited"}


# -- labels -------------------------------------------------------------------------------
def test_label_keeps_identifiers_and_caps_distinct_values() -> None:
    label = BoundedLabel(cap=3)
    assert [label(v) for v in ("quote-expired", "Bad Password", "a.b_c")] == [
        "quote-expired", "bad_password", "a.b_c"]
    assert label("one-too-many") == OTHER
    assert label("quote-expired") == "quote-expired"  # known values stay


@pytest.mark.parametrize("value", ["password=hunter2", "x" * 49, "", "naïve", "a\nb", "-lead"])
def test_label_refuses_free_text(value: str) -> None:
    assert BoundedLabel()(value) == OTHER


def test_reason_of_prefers_the_errors_reason_then_its_class() -> None:
    from confide.attestation._errors import MeasurementNotAcceptedError
    from confide.keys import KeysError

    assert telemetry.reason_of(KeysError("nonce-expired", "late")) == "nonce-expired"
    assert telemetry.reason_of(MeasurementNotAcceptedError("x")) == "measurement_not_accepted"
    assert telemetry.reason_of(ValueError("x")) == "value"


# -- logs ---------------------------------------------------------------------------------
@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    yield stream
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in saved[0]:
        root.addHandler(h)
    root.setLevel(saved[1])
    logging.captureWarnings(False)


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_human_lines_escape_newlines_so_a_message_cannot_forge_an_event(
        captured: io.StringIO) -> None:
    configure_logging("human", "INFO", process="server", stream=captured)
    logging.getLogger("t").warning("user said %s", "hi\n2026-01-01T00:00:00.000Z INFO forged")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("t").exception("failed")
    lines = _lines(captured)
    assert len(lines) == 2
    assert lines[0].endswith(
        "WARNING server t: user said hi\\n2026-01-01T00:00:00.000Z INFO forged")
    assert "failed exc=" in lines[1] and "ValueError: boom" in lines[1]


def test_json_lines_carry_request_task_and_static_ids(captured: io.StringIO) -> None:
    configure_logging("json", "DEBUG", process="worker", static={"executor_id": "executor-1"},
                      stream=captured)
    log = logging.getLogger("confide.t")
    token = REQUEST_ID.set("req-1")
    try:
        with task_context("task-42"):
            log.info("inside")
        log.info("outside")
        log.info("explicit", extra={"task_id": "task-7"})
    finally:
        REQUEST_ID.reset(token)
    log.debug("no ids\nsecond line")
    events = [json.loads(line) for line in _lines(captured)]
    assert len(events) == 4
    assert events[0] == {"ts": events[0]["ts"], "level": "INFO", "process": "worker",
                         "logger": "confide.t", "msg": "inside", "request_id": "req-1",
                         "task_id": "task-42", "executor_id": "executor-1"}
    assert "task_id" not in events[1]
    assert events[2]["task_id"] == "task-7"
    assert "request_id" not in events[3] and events[3]["msg"] == "no ids\nsecond line"
    assert events[0]["ts"].endswith("Z")


def test_python_warnings_become_log_lines(captured: io.StringIO) -> None:
    configure_logging("json", stream=captured)
    warnings.warn("careful", UserWarning, stacklevel=1)
    (event,) = [json.loads(line) for line in _lines(captured)]
    assert event["logger"] == "py.warnings" and "careful" in event["msg"]


@pytest.mark.parametrize(("fmt", "level"), [("xml", "INFO"), ("json", "LOUD")])
def test_bad_log_options_are_refused(fmt: str, level: str) -> None:
    with pytest.raises(ValueError, match=r"log format|log level"):
        configure_logging(fmt, level)  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "kept"), [
    ("abc-123_x.y", True), ("a" * 64, True), ("a" * 65, False), ("a b", False),
    ("a\nb", False), ("", False)])
def test_caller_request_ids_are_short_tokens_only(value: str, kept: bool) -> None:
    assert valid_request_id(value) == (value if kept else None)


# -- endpoint -----------------------------------------------------------------------------
@pytest.mark.parametrize(("address", "parsed"), [
    ("127.0.0.1:9464", ("127.0.0.1", 9464)), ("[::1]:0", ("::1", 0)),
    ("localhost:65535", ("localhost", 65535))])
def test_metrics_address_parses(address: str, parsed: tuple[str, int]) -> None:
    assert parse_metrics_address(address) == parsed


@pytest.mark.parametrize("address", ["9464", ":9464", "host:", "host:port", "h:65536",
                                     "[nothost]:1"])
def test_metrics_address_refuses_malformed(address: str) -> None:
    with pytest.raises(MetricsAddressError):
        parse_metrics_address(address)


def test_endpoint_serves_the_registry_and_stops() -> None:
    endpoint = MetricsEndpoint.start("127.0.0.1:0", REGISTRY)
    try:
        body = httpx.get(endpoint.url, timeout=5).text
        assert 'confide_build_info{version="' in body
        assert "process_cpu_seconds_total" in body
    finally:
        endpoint.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(endpoint.url, timeout=2)


# -- worker metrics -------------------------------------------------------------------------
_WORKER = """
from confide.telemetry._metrics import (
    RPC_HANDLED, WORKER_SLOTS, WORKER_TASKS, WORKER_STAGED_BYTES)
WORKER_TASKS.labels("builtin", "ok").inc(3)
WORKER_STAGED_BYTES.labels("in").inc(100)
WORKER_SLOTS.labels("free").set(4)
RPC_HANDLED.labels("s", "m", "OK").inc()  # a server metric: must not be merged
"""


def _fake_worker(path: Path) -> int:
    env = {**os.environ, **worker_environment(path)}
    proc = subprocess.run([sys.executable, "-c", _WORKER], env=env, check=True)
    assert proc.returncode == 0
    pids = {int(p.stem.rsplit("_", 1)[1]) for p in path.glob("*.db")}
    (pid,) = pids
    return pid


def _merged(collector: WorkerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for m in collector.collect() for s in m.samples}


def test_workers_metrics_are_merged_and_only_theirs(tmp_path: Path) -> None:
    path = prepare_worker_metrics_dir(tmp_path / "wm")
    pid = _fake_worker(path)
    collector = WorkerMetrics(path)
    merged = _merged(collector)
    assert merged[("confide_worker_tasks_total", (("executor", "builtin"), ("outcome", "ok")))] \
        == 3
    assert merged[("confide_worker_staged_bytes_total", (("direction", "in"),))] == 100
    assert merged[("confide_worker_slots", (("state", "free"),))] == 4
    assert all(name.startswith("confide_worker_") for name, _ in merged)
    worker_exited(path, pid)  # its live gauges go, its counters stay
    after = _merged(collector)
    assert ("confide_worker_slots", (("state", "free"),)) not in after
    assert after[("confide_worker_staged_bytes_total", (("direction", "in"),))] == 100


def test_prepare_empties_the_directory_of_a_previous_run(tmp_path: Path) -> None:
    path = prepare_worker_metrics_dir(tmp_path / "wm")
    _fake_worker(path)
    prepare_worker_metrics_dir(path)
    assert list(path.iterdir()) == []
    assert _merged(WorkerMetrics(path)) == {}
