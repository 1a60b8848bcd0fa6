"""The composition root: a node wires the services it hosts (all of them today) and workers."""

from ._app import ConfigError, Platform, open_root_secret
from ._config import DEFAULT_ADMIN_PASSWORD, ServerConfig
from ._keys import PlatformKeys, open_platform_keys

__all__ = ["DEFAULT_ADMIN_PASSWORD", "ConfigError", "Platform", "PlatformKeys", "ServerConfig",
           "open_platform_keys", "open_root_secret"]
