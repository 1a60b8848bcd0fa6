"""The file agent's destination for a push-decrypted input (see ``_staging``)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from ..config import Limits
from ..crypto import Decryptor, new_decryptor
from ..staged import StagedFile
from ._area import AreaBudget, MeteredFile, remove_file

__all__ = ["DecryptingSink"]


class DecryptingSink:
    """The file agent's destination for one push-decrypted input.

    It lends the decryptor's buffer to the HTTP receiver
    (:class:`~confide.execution.file_agent.BufferedDestination`) and writes
    plaintext to a new 0600 file in the private area. "Seeking" back to 0 --
    what the file agent does before retrying a failed attempt -- truncates
    the plaintext and starts a fresh decryptor; no other position is allowed.
    """

    def __init__(self, f: StagedFile, plain: Path, limits: Limits,
                 area: AreaBudget | None = None, *, file_name: str | None = None,
                 write_behind: bool = True) -> None:
        """``write_behind``: as for :func:`~confide.crypto.new_decryptor`."""
        self._f = f
        self._write_behind = write_behind
        self._file_name = file_name  # teaclave-file-128: the name embedded in the file
        self._path = plain
        self._limits = limits
        self._area = area
        fd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        raw = os.fdopen(fd, "wb")
        self._out: Any = raw if area is None else MeteredFile(raw, area)
        self._dec = self._new()
        self._taken = 0

    def _new(self) -> Decryptor:
        f = self._f
        return new_decryptor(f.schema, f.key, f.iv, self._out, expected_cmac=f.cmac,
                             file_name=self._file_name, limits=self._limits,
                             write_behind=self._write_behind)  # fmt: skip

    def get_buffer(self) -> memoryview:
        return self._dec.get_buffer()

    def buffer_updated(self, n: int) -> None:
        self._taken += n
        self._dec.buffer_updated(n)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        n = self._dec.write(data)
        self._taken += n
        return n

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._taken

    def seek(self, offset: int, whence: int = 0) -> int:
        if (offset, whence) != (0, 0):
            raise io.UnsupportedOperation("a decrypting sink can only restart from 0")
        if self._taken == 0:
            return 0  # the first attempt: nothing to undo
        self._dec.close()  # its writer must be done with the file before it is cut
        self._out.seek(0)
        self._out.truncate()
        self._dec = self._new()
        self._taken = 0
        return 0

    def truncate(self, size: int | None = None) -> int:
        return self._taken  # seek(0) already dropped everything

    def finish(self) -> None:
        """Complete the verification (raises ``CryptoError``) and close the plaintext."""
        self._dec.finish()
        self._out.close()

    def discard(self) -> None:
        """Close and delete the plaintext (after any failure)."""
        self._dec.close()
        try:
            self._out.close()
        except OSError:
            pass
        remove_file(self._path, self._area)
