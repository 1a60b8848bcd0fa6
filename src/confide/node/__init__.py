"""The composition root: a node wires the roles it serves (all by default); worker hosts."""

from ._app import ConfigError, Platform, open_root_secret
from ._config import ALL_ROLES, DEFAULT_ADMIN_PASSWORD, ServerConfig
from ._keys import PlatformKeys, open_platform_keys
from ._workers import WorkerHost, WorkerHostConfig, WorkerHostError

__all__ = ["ALL_ROLES", "DEFAULT_ADMIN_PASSWORD", "ConfigError", "Platform", "PlatformKeys",
           "ServerConfig", "WorkerHost", "WorkerHostConfig", "WorkerHostError",
           "open_platform_keys", "open_root_secret"]
