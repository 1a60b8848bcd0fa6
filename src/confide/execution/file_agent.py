"""Interim file agent: only ``data:`` URLs. Replaced by the full agent (http(s),
file://, fusion://, URL policy) on the data-path branch."""

from __future__ import annotations

import base64
from typing import BinaryIO

from ..config import Limits

__all__ = ["FileAgent", "FileAgentError", "UrlPolicy"]


class FileAgentError(Exception):
    pass


class UrlPolicy:
    @classmethod
    def embedded_default(cls) -> UrlPolicy:
        return cls()


class FileAgent:
    def __init__(self, policy: UrlPolicy, limits: Limits) -> None:
        self._policy = policy
        self._limits = limits

    def download(self, url: str, dst: BinaryIO, *, max_bytes: int) -> int:
        prefix = "data:text/plain;base64,"
        if not url.startswith(prefix):
            raise FileAgentError("unsupported URL scheme")
        data = base64.b64decode(url[len(prefix):])
        if len(data) > max_bytes:
            raise FileAgentError("too large")
        dst.write(data)
        return len(data)

    def upload(self, url: str, src: BinaryIO, size: int) -> None:
        raise FileAgentError("uploads are not supported by the interim agent")
