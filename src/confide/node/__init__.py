"""The confide server: every service wired together, plus the worker pool."""

from ._app import ConfigError, Platform, open_root_secret
from ._config import DEFAULT_ADMIN_PASSWORD, ServerConfig

__all__ = ["DEFAULT_ADMIN_PASSWORD", "ConfigError", "Platform", "ServerConfig", "open_root_secret"]
