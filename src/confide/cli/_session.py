"""The CLI's profiles: several users and servers side by side, each with its session.

Everything lives under ``$CONFIDE_HOME`` (default ``~/.config/confide``), in
``profiles/NAME/`` (mode 0700): ``session.json`` (where the server is: one or
several endpoints; how to verify it, the user's token; mode 0600) and
``files/`` (the keys of the files this profile encrypted, by data id; mode
0600). The profile is chosen with ``confide --profile NAME`` or
``CONFIDE_PROFILE`` (default ``default``). A
``session.json`` directly in ``$CONFIDE_HOME`` (older confide) is read as the
``default`` profile's.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .._atomic import write_atomic

__all__ = ["DEFAULT_PROFILE", "Session", "active_profile", "confide_home", "files_dir",
           "profile_dir", "profiles", "set_profile", "valid_profile"]

DEFAULT_PROFILE = "default"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_active = [DEFAULT_PROFILE]


def valid_profile(name: str) -> bool:
    return bool(_NAME.match(name))


def set_profile(name: str) -> None:
    """Choose the profile of this process (``--profile``); the name must be valid."""
    if not valid_profile(name):
        raise ValueError(f"invalid profile name {name!r}: letters, digits, '.', '_', '-' "
                         "(at most 64, starting with a letter or digit)")
    _active[0] = name


def active_profile() -> str:
    return _active[0]


def confide_home() -> Path:
    home = os.environ.get("CONFIDE_HOME")
    return Path(home) if home else Path.home() / ".config" / "confide"


def profile_dir(name: str | None = None) -> Path:
    return confide_home() / "profiles" / (name or active_profile())


def profiles() -> list[str]:
    root = confide_home() / "profiles"
    names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if DEFAULT_PROFILE not in names and (confide_home() / "session.json").is_file():
        names.insert(0, DEFAULT_PROFILE)
    return names


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


@dataclass
class Session:
    host: str
    authentication_port: int
    frontend_port: int
    server_cert: str  # "" when the session attests with data_dir's trust files
    user_id: str = ""
    token: str = ""
    data_dir: str = ""  # trust files (enclave_info, auditors, AS root) to attest with
    # The newest audit tree head `confide audit` verified (size, root hex): the next
    # answer must prove it extends it.
    audit_tree_size: int = 0
    audit_tree_root: str = ""
    # Every replica of the client APIs, ``HOST:FRONTEND_PORT:AUTH_PORT`` each, in order
    # (empty in sessions saved before confide took several: ``host`` and the ports then).
    hosts: list[str] = field(default_factory=list)

    def endpoint_entries(self) -> list[str]:
        """The endpoints every command of this profile connects to (fails over between)."""
        if self.hosts:
            return list(self.hosts)
        host = f"[{self.host}]" if ":" in self.host else self.host
        return [f"{host}:{self.frontend_port}:{self.authentication_port}"]

    def server(self) -> str:
        """The endpoints for people: ``HOST:FRONTEND_PORT`` each, comma-separated."""
        return ",".join(e.rsplit(":", 1)[0] for e in self.endpoint_entries())

    def save(self, name: str | None = None) -> None:
        directory = _private_dir(profile_dir(name))
        write_atomic(directory / "session.json", json.dumps(asdict(self)).encode())

    @classmethod
    def load(cls, name: str | None = None) -> Session | None:
        name = name or active_profile()
        path = profile_dir(name) / "session.json"
        if not path.exists() and name == DEFAULT_PROFILE:
            path = confide_home() / "session.json"  # before profiles existed
        if not path.exists():
            return None
        fields: dict[str, Any] = json.loads(path.read_text())
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in fields.items() if k in known})

    @staticmethod
    def forget(name: str | None = None) -> bool:
        """Drop the profile's token (the server stays remembered); False if none."""
        session = Session.load(name)
        if session is None or not session.token:
            return False
        session.token = ""
        session.save(name)
        return True


def files_dir(name: str | None = None) -> Path:
    """Where the profile keeps the keys of the files it encrypted."""
    return _private_dir(profile_dir(name) / "files")
