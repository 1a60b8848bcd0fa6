"""What the console needs of the profile's file keys (the CLI keeps them; the console asks).

The console holds no keys of its own: ``confide console`` hands it the
profile's key store (``cli/_keystore.py``) through this protocol, so an upload
made in the browser is downloadable with ``confide file download`` and back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["KeptFile", "Keyring"]


@dataclass(frozen=True)
class KeptFile:
    data_id: str
    kind: str  # "input" or "output"
    name: str  # the object's name on the blob store
    url: str  # where a worker fetches (input) or writes (output) it
    get_url: str  # where its owner reads it back
    schema: str
    key: bytes
    iv: bytes
    cmac: bytes = b""  # inputs: known at upload
    size: int | None = None  # inputs: plaintext bytes


class Keyring(Protocol):
    def save(self, entry: KeptFile) -> None: ...

    def load(self, data_id: str) -> KeptFile:
        """The entry for ``data_id``; ``KeyError`` when the profile holds none."""
        ...

    def entries(self) -> list[KeptFile]: ...
