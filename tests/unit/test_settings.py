"""The operator's configuration: TOML file + CONFIDE_<SECTION>__<KEY> variables over defaults.

Every refusal names where the value came from and the key; an operator never
starts a server with a setting silently ignored.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import tomllib
import typing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import confide.settings
from confide._units import binary_size
from confide.config import Limits
from confide.execution._worker import WorkerConfig
from confide.settings import (
    REDACTED,
    ServerSettings,
    Settings,
    SettingsError,
    env_name,
    load_settings,
    render_json,
    render_toml,
    secret_field,
    section_from,
    settings_dict,
    settings_from,
)

LIMIT_FIELDS = dataclasses.fields(Limits)
HINTS = typing.get_type_hints(Limits)
CONFIDE = Path(sys.executable).with_name("confide")  # the installed entry point


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "confide.toml"
    path.write_text(text)
    return path


def _problems(document: dict[str, Any] | None = None, environ: dict[str, str] | None = None,
              ) -> list[str]:
    with pytest.raises(SettingsError) as info:
        settings_from(document or {}, environ or {}, source="confide.toml")
    return info.value.problems


def test_public_surface() -> None:
    assert confide.settings.__all__ == sorted(confide.settings.__all__)
    assert set(confide.settings.__all__) == {
        "ENV_PREFIX", "REDACTED", "ServerSettings", "Settings", "SettingsError", "env_name",
        "load_settings", "render_json", "render_toml", "secret_field", "section_from",
        "settings_dict", "settings_from"}


def test_no_file_and_no_variables_give_the_defaults() -> None:
    assert load_settings(None, {}) == Settings()
    assert load_settings(None, {}).limits == Limits()


def test_file_then_environment_override_the_defaults(tmp_path: Path) -> None:
    path = _file(tmp_path, '[limits]\nmax_output_file_bytes = "64MiB"\nmax_log_lines = 50\n')
    settings = load_settings(path, {"CONFIDE_LIMITS__MAX_LOG_LINES": "7"})
    assert settings.limits.max_output_file_bytes == 64 << 20
    assert settings.limits.max_log_lines == 7  # the environment wins over the file
    assert settings.limits.max_output_bytes == Limits().max_output_bytes


def test_unrelated_confide_variables_are_not_settings() -> None:
    env = {"CONFIDE_DATA_DIR": "x", "CONFIDE_PASSWORD": "pw", "CONFIDE_CONFIG": "f.toml"}
    assert settings_from({}, env) == Settings()


@pytest.mark.parametrize(("text", "value"), [
    ("256MiB", 256 << 20), ("256 MiB", 256 << 20), ("2GiB", 2 << 30), ("64 kib", 64 << 10),
    ("512B", 512), ("1_000", 1000), ("1TiB", 1 << 40),
])
def test_sizes_take_binary_units(text: str, value: int) -> None:
    settings = settings_from({"limits": {"max_task_area_bytes": text}}, {})
    assert settings.limits.max_task_area_bytes == value
    env = {env_name("limits", "max_task_area_bytes"): text}
    assert settings_from({}, env).limits.max_task_area_bytes == value


# --- refusals: each names its source and key -------------------------------------


def test_rejects_unknown_key_naming_it_and_the_closest_one() -> None:
    assert _problems({"limits": {"max_outpt_bytes": 3}}) == [
        "confide.toml: limits.max_outpt_bytes: unknown key (did you mean "
        "limits.max_output_bytes?)"]


def test_rejects_unknown_key_in_the_environment() -> None:
    assert _problems(environ={"CONFIDE_LIMITS__NO_SUCH_CAP": "1"}) == [
        "environment variable CONFIDE_LIMITS__NO_SUCH_CAP (limits.no_such_cap): unknown key"]


def test_rejects_unknown_section() -> None:
    assert _problems({"limit": {"max_log_lines": 1}}) == [
        "confide.toml: unknown section [limit] (did you mean 'limits'?)"]
    assert _problems(environ={"CONFIDE_LIMIT__MAX_LOG_LINES": "1"}) == [
        "environment variable CONFIDE_LIMIT__MAX_LOG_LINES: unknown section 'limit' "
        "(did you mean 'limits'?)"]


def test_rejects_a_key_outside_any_table() -> None:
    assert _problems({"max_log_lines": 3}) == ["confide.toml: unknown section [max_log_lines]"]
    assert _problems({"limits": 3}) == ["confide.toml: limits must be a table ([limits]), got 3"]


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("max_log_lines", "10", "expected a whole number, got '10'"),
    ("max_log_lines", 1.5, "expected a whole number, got 1.5"),
    ("max_log_lines", True, "expected a whole number, got true"),
    ("max_log_lines", [1], "expected a whole number, got [1]"),
    ("max_output_file_bytes", 2.0, 'expected a size (a whole number of bytes or a string such '
                                   'as "256MiB"), got 2.0'),
    ("python_wall_seconds", "60", "expected a number, got '60'"),
    ("python_wall_seconds", False, "expected a number, got false"),
])
def test_rejects_a_value_of_the_wrong_type_naming_the_key(key: str, value: Any,
                                                          expected: str) -> None:
    assert _problems({"limits": {key: value}}) == [f"confide.toml: limits.{key}: {expected}"]


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("max_log_lines", -1, "must not be negative, got -1"),
    ("max_output_file_bytes", "-1MiB", "expected a size such as 256MiB, got '-1MiB'"),
    ("max_output_file_bytes", "256MB", "unknown size unit 'MB' in '256MB' (use B, KiB, MiB, GiB "
                                       "or TiB)"),
    ("max_output_file_bytes", 2**63, f"must be at most {2**63 - 1}, got {2**63}"),
    ("python_wall_seconds", -0.5, "must not be negative, got -0.5"),
    ("python_wall_seconds", float("inf"), "must be a finite number, got inf"),
    ("python_wall_seconds", float("nan"), "must be a finite number, got nan"),
])
def test_rejects_a_bad_value_naming_the_key(key: str, value: Any, expected: str) -> None:
    assert _problems({"limits": {key: value}}) == [f"confide.toml: limits.{key}: {expected}"]


@pytest.mark.parametrize(("value", "expected"), [
    ("lots", "expected a size such as 256MiB, got 'lots'"),
    ("-5", "expected a size such as 256MiB, got '-5'"),
    ("", "expected a size such as 256MiB, got ''"),
])
def test_rejects_a_bad_environment_value_naming_the_variable(value: str, expected: str) -> None:
    var = "CONFIDE_LIMITS__MAX_OUTPUT_BYTES"
    assert _problems(environ={var: value}) == [
        f"environment variable {var} (limits.max_output_bytes): {expected}"]


def test_reports_every_problem_at_once() -> None:
    problems = _problems({"limits": {"max_log_lines": -1, "nope": 1}},
                         {"CONFIDE_LIMITS__MAX_LOG_BYTES": "x"})
    assert len(problems) == 3
    text = str(SettingsError(problems))
    assert text.startswith("invalid configuration:\n  - ")


def test_rejects_invalid_toml_naming_the_file_and_line(tmp_path: Path) -> None:
    path = _file(tmp_path, "[limits]\nmax_log_lines = = 3\n")
    with pytest.raises(SettingsError) as info:
        load_settings(path, {})
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}: not valid TOML: ") and "line 2" in problem


def test_rejects_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(tmp_path / "absent.toml", {})
    assert info.value.problems == [
        f"cannot read configuration file {tmp_path / 'absent.toml'}: No such file or directory"]


# --- every Limits field is settable, and shown so it loads back -------------------


def _other_value(name: str) -> Any:
    """A valid value other than the default, of the field's type."""
    default = getattr(Limits(), name)
    if isinstance(default, bool):
        return not default
    if isinstance(default, int | float):
        return default + (1 if isinstance(default, int) else 0.5)
    if isinstance(default, str):
        return default + "x"
    raise AssertionError(f"add a test value for {name}: {HINTS[name]}")


def _env_text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


@pytest.mark.parametrize("field", LIMIT_FIELDS, ids=[f.name for f in LIMIT_FIELDS])
def test_every_limit_is_settable_from_the_file_and_the_environment(
    field: dataclasses.Field[Any],
) -> None:
    value = _other_value(field.name)
    assert getattr(settings_from({"limits": {field.name: value}}, {}).limits, field.name) == value
    env = {env_name("limits", field.name): _env_text(value)}
    assert getattr(settings_from({}, env).limits, field.name) == value


NUMBERS = {f.name: (st.integers(0, 2**63 - 1) if HINTS[f.name] is int
                   else st.floats(0, 1e9, allow_nan=False))
           for f in LIMIT_FIELDS if HINTS[f.name] in (int, float)}


@given(st.fixed_dictionaries({}, optional=NUMBERS))
def test_shown_toml_loads_back_to_the_same_settings(values: dict[str, Any]) -> None:
    settings = settings_from({"limits": values}, {})
    assert settings_from(tomllib.loads(render_toml(settings)), {}) == settings
    assert json.loads(render_json(settings)) == {
        "limits": dataclasses.asdict(settings.limits),
        "server": {"services": ["authentication", "frontend", "scheduler", "keys"],
                   "internal_host": "127.0.0.1", "server_names": ["localhost"],
                   "log_format": "human", "health_check_s": 2.0, "shutdown_grace_s": 30.0},
        "keys": {"rotate_after": "off", "check_interval_s": 10.0}}


def test_toml_shows_sizes_in_binary_units() -> None:
    text = render_toml(Settings())
    assert "max_output_file_bytes = 268435456  # 256 MiB\n" in text
    assert "max_log_lines = 10000\n" in text


# --- secrets are never shown ------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Server:
    admin_password: str | None = secret_field()
    host: str = "127.0.0.1"
    token: str = secret_field("")


@dataclasses.dataclass(frozen=True)
class _WithSecrets:
    server: _Server = dataclasses.field(default_factory=_Server)


def test_secrets_are_redacted_when_shown() -> None:
    shown = settings_dict(_WithSecrets(_Server(admin_password="hunter2", token="t0k")))
    assert shown == {"server": {"admin_password": REDACTED, "host": "127.0.0.1",
                                "token": REDACTED}}
    text = render_toml(typing.cast(Any, _WithSecrets(_Server(admin_password="hunter2"))))
    assert "hunter2" not in text and f'admin_password = "{REDACTED}"' in text


def test_unset_secrets_are_shown_as_unset_not_redacted() -> None:
    assert settings_dict(_WithSecrets()) == {"server": {"host": "127.0.0.1", "token": ""}}


# --- the worker gets the server's limits ------------------------------------------


def _worker(limits: Limits) -> WorkerConfig:
    return WorkerConfig(scheduler="s", key_service="k", executor_id="e", ca_pem=b"",
                        sim_state_dir="/x", limits=limits)


def test_worker_bootstrap_carries_the_limits() -> None:
    limits = Limits(max_output_file_bytes=1234, python_wall_seconds=2.5)
    assert WorkerConfig.from_cbor(_worker(limits).to_cbor()).limits == limits


def test_worker_refuses_bootstrap_limits_the_loader_refuses() -> None:
    with pytest.raises(SettingsError) as info:
        WorkerConfig.from_cbor(_worker(Limits(max_output_file_bytes=-1)).to_cbor())
    assert info.value.problems == [
        "worker bootstrap: limits.max_output_file_bytes: must not be negative, got -1"]


def test_section_from_builds_one_section() -> None:
    assert section_from(Limits, {"max_log_lines": 3}, source="s") == Limits(max_log_lines=3)


# --- `confide config show` through the installed entry point ----------------------


def _confide(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONFIDE_")}
    return subprocess.run([str(CONFIDE), *args], capture_output=True, text=True, timeout=60,
                          env={**clean, **(env or {})})


def test_config_show_prints_the_effective_configuration(tmp_path: Path) -> None:
    path = _file(tmp_path, '[limits]\nmax_output_file_bytes = "64MiB"\n')
    shown = _confide("config", "show", "--config", str(path),
                     env={"CONFIDE_LIMITS__MAX_LOG_LINES": "12"})
    assert shown.returncode == 0, shown.stderr
    document = tomllib.loads(shown.stdout)
    assert document["limits"]["max_output_file_bytes"] == 64 << 20
    assert document["limits"]["max_log_lines"] == 12
    assert settings_from(document, {}) == load_settings(
        path, {"CONFIDE_LIMITS__MAX_LOG_LINES": "12"})


def test_config_show_as_json_with_the_file_from_the_environment(tmp_path: Path) -> None:
    path = _file(tmp_path, "[limits]\nmax_log_bytes = 4096\n")
    shown = _confide("config", "show", "--format", "json", env={"CONFIDE_CONFIG": str(path)})
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["limits"]["max_log_bytes"] == 4096


def test_config_show_refuses_a_bad_file_naming_the_key(tmp_path: Path) -> None:
    path = _file(tmp_path, "[limits]\nmax_output_bytes = -1\n")
    shown = _confide("config", "show", "--config", str(path))
    assert shown.returncode == 2
    assert shown.stdout == ""
    assert f"{path}: limits.max_output_bytes: must not be negative, got -1" in shown.stderr
    assert "Traceback" not in shown.stderr


def test_serve_refuses_a_bad_file_before_starting(tmp_path: Path) -> None:
    path = _file(tmp_path, "[limits]\nmax_outpt_bytes = 1\n")
    started = _confide("serve", "--data-dir", str(tmp_path / "data"), "--config", str(path))
    assert started.returncode == 2
    assert "cannot start: invalid configuration" in started.stderr
    assert "limits.max_outpt_bytes: unknown key" in started.stderr
    assert not (tmp_path / "data").exists()  # nothing was created


def test_server_section_sets_the_operations_options_and_the_environment_wins(
        tmp_path: Path) -> None:
    path = _file(tmp_path, '[server]\nserver_names = ["api.example", "localhost"]\n'
                           'metrics_address = "127.0.0.1:9464"\nlog_format = "json"\n'
                           'health_check_s = 5\n')
    server = load_settings(path, {env_name("server", "server_names"): "a.example, b.example"}
                           ).server
    assert server == ServerSettings(server_names=("a.example", "b.example"),
                                    metrics_address="127.0.0.1:9464", log_format="json",
                                    health_check_s=5.0)
    assert load_settings(None, {}).server == ServerSettings()  # names localhost, metrics off


def test_server_section_refuses_wrong_types_naming_the_key() -> None:
    assert _problems({"server": {"server_names": "api.example", "health_check_s": "2s",
                                 "log_fromat": "json"}}) == [
        "confide.toml: server.server_names: expected a list, got 'api.example'",
        "confide.toml: server.health_check_s: expected a number, got '2s'",
        "confide.toml: server.log_fromat: unknown key (did you mean server.log_format?)"]


def test_serve_refuses_a_bad_server_section_before_starting(tmp_path: Path) -> None:
    path = _file(tmp_path, '[server]\nlog_format = "xml"\n')
    started = _confide("serve", "--data-dir", str(tmp_path / "data"), "--config", str(path))
    assert started.returncode == 2
    assert "server.log_format" in started.stderr and "'xml'" in started.stderr
    assert not (tmp_path / "data").exists()
    # The flag wins over the file: a valid --log-format gets past that check, and the
    # file's bad metrics address is then refused by the server's own check.
    path = _file(tmp_path, '[server]\nlog_format = "xml"\nmetrics_address = "nowhere"\n')
    started = _confide("serve", "--data-dir", str(tmp_path / "data"), "--config", str(path),
                       "--log-format", "json")
    assert started.returncode == 2
    assert "'xml'" not in started.stderr and "nowhere" in started.stderr


# --- docs/operations.md says what the code does --------------------------------------

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def _shown_default(name: str) -> str:
    value = getattr(Limits(), name)
    if name.endswith("_bytes") and isinstance(value, int) and binary_size(value):
        return str(binary_size(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def test_operations_doc_lists_every_limit_with_its_default() -> None:
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+?) \|", OPERATIONS.read_text(), re.M))
    for f in LIMIT_FIELDS:
        assert rows.get(f.name) == _shown_default(f.name), f.name


def test_operations_doc_example_configuration_is_valid() -> None:
    text = OPERATIONS.read_text()
    example = text[text.index("```toml\n# confide.toml") + len("```toml\n"):]
    example = example[:example.index("```")]
    limits = settings_from(tomllib.loads(example), {}).limits
    assert (limits.max_output_file_bytes, limits.max_log_lines) == (64 << 20, 1000)


def test_operations_doc_server_example_is_valid() -> None:
    text = OPERATIONS.read_text()
    start = text.index("  ```toml\n  [server]") + len("  ```toml\n")
    example = "\n".join(line.removeprefix("  ")
                        for line in text[start:text.index("```", start)].splitlines())
    server = settings_from(tomllib.loads(example), {}).server
    assert server.server_names == ("confide.example", "localhost")
    assert (server.metrics_address, server.log_format) == ("127.0.0.1:9464", "json")


def test_operations_doc_example_errors_are_the_loaders() -> None:
    problems = _problems({"limits": {"max_outpt_bytes": 1}},
                         {"CONFIDE_LIMITS__MAX_LOG_LINES": "many"})
    text = OPERATIONS.read_text()
    for problem in problems:
        assert f"    - {problem}\n" in text
