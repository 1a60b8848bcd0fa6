"""The CLI's saved session: where the server is and the current user's token.

Stored in ``$CONFIDE_HOME`` (default ``~/.config/confide``) with mode 0600;
the token is a bearer credential for that user only.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from .._atomic import write_atomic

__all__ = ["Session", "session_path"]


def session_path() -> Path:
    home = os.environ.get("CONFIDE_HOME")
    return (Path(home) if home else Path.home() / ".config" / "confide") / "session.json"


@dataclass
class Session:
    host: str
    authentication_port: int
    frontend_port: int
    server_cert: str  # "" when the session attests with data_dir's trust files
    user_id: str = ""
    token: str = ""
    data_dir: str = ""  # trust files (enclave_info, auditors, AS root) to attest with

    def save(self) -> None:
        path = session_path()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(path, json.dumps(asdict(self)).encode())

    @classmethod
    def load(cls) -> Session | None:
        path = session_path()
        if not path.exists():
            return None
        fields = json.loads(path.read_text())
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in fields.items() if k in known})
