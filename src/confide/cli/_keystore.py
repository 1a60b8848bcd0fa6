"""The keys of the files a profile encrypted, kept on the user's own machine.

``confide file upload`` and ``file new-output`` make a fresh key per file and
keep it in ``$CONFIDE_HOME/profiles/NAME/files/DATA_ID.json`` (mode 0600, in a
0700 directory) with what is needed to fetch the file back: its URL, schema,
IV and (inputs) cmac. ``confide file download DATA_ID`` reads it from there.
The server holds its own sealed copy of the key; this one never leaves the
machine.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass

from .._atomic import write_atomic
from ._input import UsageError
from ._session import active_profile, files_dir

__all__ = ["LocalFile", "load_file", "local_files", "save_file"]

_ID = re.compile(r"^(input|output)-[0-9a-fA-F-]{32,36}$")


@dataclass(frozen=True)
class LocalFile:
    data_id: str
    kind: str  # "input" or "output"
    name: str  # the file name embedded/used on the blob store
    url: str  # where a worker fetches (input) or writes (output) it
    get_url: str  # where its owner reads it back
    schema: str
    key: str  # hex
    iv: str  # hex
    cmac: str = ""  # hex (inputs)
    size: int | None = None  # plaintext bytes (inputs)


def save_file(entry: LocalFile) -> None:
    if not _ID.match(entry.data_id):
        raise ValueError(f"not a data id: {entry.data_id!r}")
    write_atomic(files_dir() / f"{entry.data_id}.json", json.dumps(asdict(entry)).encode())


def load_file(data_id: str) -> LocalFile:
    path = files_dir() / f"{data_id}.json"
    if not _ID.match(data_id) or not path.is_file():
        raise UsageError(f"profile {active_profile()} holds no key for {data_id!r}: give "
                         "--url, --schema and --key-file (or --key-stdin) of the file")
    return LocalFile(**json.loads(path.read_text()))


def local_files() -> list[LocalFile]:
    return [LocalFile(**json.loads(p.read_text())) for p in sorted(files_dir().glob("*.json"))]
