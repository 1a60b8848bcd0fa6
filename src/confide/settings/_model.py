"""What the operator can configure: one section (a frozen dataclass) per TOML table.

``Settings`` is the whole configuration. Each of its fields is a *section*
whose own fields are the keys of that TOML table (``[limits]`` is
:class:`~confide.config.Limits`). Adding the server's flags later is one more
section dataclass and one more field here; the loader, the environment
variables and ``confide config show`` pick it up from the type hints.

A key whose value must never be printed (a password, a key) is declared with
:func:`secret_field`; ``confide config show`` redacts it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .._units import parse_duration
from ..config import Limits
from ._values import ValueRefused

__all__ = ["SECRET", "KeysSettings", "ServerSettings", "Settings", "is_secret", "secret_field"]

#: Field metadata key marking a secret value.
SECRET = "confide.secret"  # noqa: S105 - a metadata key, not a password


def secret_field(default: Any = None) -> Any:
    """A section field whose value is redacted wherever the configuration is shown."""
    return field(default=default, metadata={SECRET: True})


def is_secret(f: dataclasses.Field[Any]) -> bool:
    return bool(f.metadata.get(SECRET, False))


@dataclass(frozen=True)
class ServerSettings:
    """``[server]``: how ``confide serve`` is reached and observed (docs/operations.md).

    A command-line flag, when given, wins over these. ``confide serve`` checks
    ``log_format`` and ``metrics_address`` before it starts.

    Attributes:
        server_names: DNS names clients reach the APIs by; the API certificate
            names each (``--server-name``).
        metrics_address: ``HOST:PORT`` of the Prometheus endpoint; unset: off
            (``--metrics-address``).
        log_format: ``human`` or ``json`` (``--log-format``).
        health_check_s: how often the readiness checks run.
        shutdown_grace_s: on SIGTERM, how long running tasks may take to
            finish before they are failed (``--shutdown-grace``).
        services: the roles this node serves (``--services``); all of them by default.
        internal_host: where the scheduler and key service listen (``--internal-host``).
        key_service: ``HOST:PORT[,HOST:PORT...]``: the key services to join through
            (``--keys``), tried in order; on a node with the ``keys`` role it makes a
            further key service.
    """

    services: tuple[str, ...] = ("authentication", "frontend", "scheduler", "keys")
    internal_host: str = "127.0.0.1"
    key_service: str | None = None
    server_names: tuple[str, ...] = ("localhost",)
    metrics_address: str | None = None
    log_format: str = "human"
    health_check_s: float = 2.0
    shutdown_grace_s: float = 30.0


@dataclass(frozen=True)
class KeysSettings:
    """``[keys]``: rotation of the platform's long-lived keys (docs/operations.md, "Key
    rotation").

    Attributes:
        rotate_after: rotate a key once the active one is this old (``"90d"``,
            ``"12h"``; units s m h d w), or ``"off"``; checked by the running
            server every ``check_interval_s``.
        check_interval_s: how often the server reloads the keyring (picking up
            ``confide keys rotate`` and other nodes' rotations) and checks
            ``rotate_after``.
    """

    rotate_after: str = "off"
    check_interval_s: float = 10.0

    @staticmethod
    def check_value(key: str, value: Any) -> None:
        """Refuse a value the type alone lets through (``ValueRefused`` says why)."""
        try:
            if key == "rotate_after":
                parse_duration(value)
            elif key == "check_interval_s" and not 0.1 <= value <= 3600:
                raise ValueError(f"must be 0.1..3600 seconds, got {value}")
        except ValueError as e:
            raise ValueRefused(str(e)) from e


@dataclass(frozen=True)
class Settings:
    """The effective configuration: defaults < TOML file < environment.

    Attributes:
        limits: every cap on untrusted input and on what a task makes
            (``[limits]``; see docs/operations.md).
        server: how the server is reached and observed (``[server]``).
        keys: when the platform's keys rotate (``[keys]``).
    """

    limits: Limits = field(default_factory=Limits)
    server: ServerSettings = field(default_factory=ServerSettings)
    keys: KeysSettings = field(default_factory=KeysSettings)
