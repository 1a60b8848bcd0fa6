"""The operator's configuration: a TOML file and ``CONFIDE_<SECTION>__<KEY>``
environment variables over the built-in defaults, validated before anything starts.

``confide serve --config FILE`` loads it and hands its ``[limits]`` to every
component, workers included; ``confide config show`` prints the effective
values with secrets redacted. ``from confide.config import Limits`` is unchanged:
``Limits`` is the ``[limits]`` section. See docs/operations.md, "Configuration".
"""

from ._load import ENV_PREFIX, SettingsError, env_name, load_settings, section_from, settings_from
from ._model import ServerSettings, Settings, secret_field
from ._render import REDACTED, render_json, render_toml, settings_dict

__all__ = [
    "ENV_PREFIX",
    "REDACTED",
    "ServerSettings",
    "Settings",
    "SettingsError",
    "env_name",
    "load_settings",
    "render_json",
    "render_toml",
    "secret_field",
    "section_from",
    "settings_dict",
    "settings_from",
]
