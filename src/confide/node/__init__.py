"""The composition root: a node wires the services it hosts, their servers and workers.

Today one node hosts every service (``confide serve``, :class:`Platform`: the
database, the services, their gRPC servers, the attested API certificate and
the supervised worker pool). Nothing below this package knows which services
share a process: that is decided here only.
"""

from ._app import ConfigError, Platform, open_root_secret
from ._config import DEFAULT_ADMIN_PASSWORD, ServerConfig

__all__ = ["DEFAULT_ADMIN_PASSWORD", "ConfigError", "Platform", "ServerConfig", "open_root_secret"]
