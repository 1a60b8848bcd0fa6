"""``confide serve --allow-loopback-port`` / ``--file-root``: off by default, narrow when on."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from confide.execution._worker import WorkerConfig
from confide.execution.file_agent import PolicyViolation, UrlPolicy
from confide.server import ConfigError, Platform, ServerConfig

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
                       extra_loopback_ports=(8080,))
    assert WorkerConfig.from_cbor(cfg.to_cbor()) == cfg


@pytest.mark.parametrize("bad", [{"file_agent_loopback_ports": (0,)},
                                 {"file_agent_loopback_ports": (65536,)},
                                 {"file_roots": ("/nonexistent/confide-root",)}])
def test_rejects_invalid_file_agent_options_at_start(tmp_path: Path, bad: dict[str, object]
                                                     ) -> None:
    with pytest.raises(ConfigError):
        Platform(ServerConfig(data_dir=tmp_path / "d", workers=0, blob_port=None,
                              **bad))  # type: ignore[arg-type]
