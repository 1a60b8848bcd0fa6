"""``confide serve`` options: the file agent (off by default, narrow when on) and the
workers' pre-started Python sandboxes."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from confide.config import Limits
from confide.execution._worker import WorkerConfig, build_runner
from confide.execution.file_agent import PolicyViolation, UrlPolicy
from confide.executors.python import PythonExecutor
from confide.node import ConfigError, Platform, ServerConfig

LOOPBACK = ipaddress.ip_address("127.0.0.1")


def test_embedded_policy_refuses_loopback_ports_nobody_opened() -> None:
    policy = UrlPolicy.embedded(blob_store_port=7778)
    policy.check_address("u", LOOPBACK, 7778)
    with pytest.raises(PolicyViolation, match="loopback port 8080 is not allowed"):
        policy.check_address("u", LOOPBACK, 8080)
    assert "file" not in policy.schemes


def test_embedded_policy_opens_exactly_the_extra_loopback_ports() -> None:
    policy = UrlPolicy.embedded(blob_store_port=7778, extra_loopback_ports=(8080,))
    for port in (7778, 8080):
        policy.check_address("u", LOOPBACK, port)
    with pytest.raises(PolicyViolation):
        policy.check_address("u", LOOPBACK, 8081)
    with pytest.raises(PolicyViolation):  # private networks stay closed
        policy.check_address("u", ipaddress.ip_address("10.0.0.1"), 8080)


def test_extra_loopback_port_works_without_a_blob_store() -> None:
    policy = UrlPolicy.embedded(blob_store_port=None, extra_loopback_ports=(9000,))
    policy.check_address("u", LOOPBACK, 9000)
    with pytest.raises(PolicyViolation):
        policy.check_address("u", LOOPBACK, 7778)
    with pytest.raises(PolicyViolation, match="loopback"):
        UrlPolicy.embedded(blob_store_port=None).check_address("u", LOOPBACK, 9000)


def test_worker_config_carries_the_options_through_cbor() -> None:
    cfg = WorkerConfig(scheduler="s", key_service="k", executor_id="e", ca_pem=b"ca",
                       sim_state_dir="/state", file_roots=("/srv/in",),
                       extra_loopback_ports=(8080,), python_prestart=2)
    assert WorkerConfig.from_cbor(cfg.to_cbor()) == cfg


def _worker_prestart(**options: object) -> int:
    cfg = WorkerConfig(scheduler="s", key_service="k", executor_id="e", ca_pem=b"ca",
                       sim_state_dir="/state", **options)  # type: ignore[arg-type]
    runner = build_runner(cfg, Limits())
    python = runner._executors["mesapy"]
    assert isinstance(python, PythonExecutor)
    runner.close()
    return python.prestart


def test_worker_pre_starts_one_python_sandbox_per_slot_within_the_cap() -> None:
    cap = Limits().python_max_prestarted
    assert _worker_prestart(slots=2) == 2
    assert _worker_prestart(slots=cap + 3) == cap
    assert _worker_prestart(slots=4, python_prestart=1) == 1
    assert _worker_prestart(slots=4, python_prestart=0) == 0
    assert _worker_prestart(slots=4, python_prestart=cap + 1) == cap


@pytest.mark.parametrize("prestart", [-1, Limits().python_max_prestarted + 1])
def test_server_refuses_a_python_prestart_outside_the_cap(tmp_path: Path, prestart: int) -> None:
    with pytest.raises(ConfigError, match="python prestart"):
        Platform(ServerConfig(data_dir=tmp_path / "d", workers=0, blob_port=None,
                              worker_python_prestart=prestart))


@pytest.mark.parametrize("bad", [{"file_agent_loopback_ports": (0,)},
                                 {"file_agent_loopback_ports": (65536,)},
                                 {"file_roots": ("/nonexistent/confide-root",)}])
def test_rejects_invalid_file_agent_options_at_start(tmp_path: Path, bad: dict[str, object]
                                                     ) -> None:
    with pytest.raises(ConfigError):
        Platform(ServerConfig(data_dir=tmp_path / "d", workers=0, blob_port=None,
                              **bad))  # type: ignore[arg-type]
