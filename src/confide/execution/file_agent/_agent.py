"""The file agent: one entry point per direction, dispatching on the URL scheme."""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Callable
from types import TracebackType
from typing import BinaryIO

from confide.config import Limits

from ._errors import PolicyViolation, TooLarge, TransferFailed
from ._http import HttpTransfers, Resolver, system_resolver
from ._local import LocalStore, decode_data_url, file_url_path, fusion_url_path
from ._policy import UrlPolicy, check_url_text
from ._receive import BufferedDestination

__all__ = ["FileAgent"]


class FileAgent:
    """Fetches task inputs and stores task outputs under a :class:`UrlPolicy`.

    The agent moves ciphertext only: it neither decrypts nor checks tags (the
    worker does, inside the TEE). Every failure raises a
    :class:`~confide.execution.file_agent.FileAgentError`; the worker reports
    any of them as ``ocall error = 1`` (spec §5.1).

    Args:
        policy: what may be reached; there is no default policy.
        limits: size, redirect, URL length and time caps.
        resolver: host name resolver for http(s) (tests inject one).
        ssl_context: TLS context for https (default: system roots via certifi).
        sleep: used between retries (tests inject a no-op).
        clock: monotonic seconds, for the whole-transfer deadline.
    """

    def __init__(
        self,
        policy: UrlPolicy,
        limits: Limits,
        *,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._policy = policy
        self._limits = limits
        self._roots = [
            LocalStore(os.path.realpath(root), create_dirs=False) for root in policy.file_roots
        ]
        self._fusion = (
            LocalStore(os.path.realpath(policy.fusion_dir), create_dirs=True)
            if policy.fusion_dir is not None
            else None
        )
        self._http = HttpTransfers(
            policy, limits, resolver=resolver, ssl_context=ssl_context, sleep=sleep, clock=clock
        )

    def close(self) -> None:
        """Release the HTTP client."""
        self._http.close()

    def __enter__(self) -> FileAgent:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def download(
        self, url: str, dst: BinaryIO | BufferedDestination, *, max_bytes: int
    ) -> int:
        """Copy the content at ``url`` into ``dst``.

        Args:
            url: ``http(s)``, ``file``, ``data`` or ``fusion`` URL (as allowed).
            dst: binary destination; if seekable, a retried download rewinds it
                to its position at the call and truncates it there. A
                :class:`BufferedDestination` (e.g. the worker's decrypting
                sink) lends its own buffer: http(s) bodies are received
                straight into it.
            max_bytes: the largest body accepted (also capped by
                ``Limits.max_download_bytes``).

        Returns:
            The number of bytes written to ``dst``.

        Raises:
            FileAgentError: any refusal or failure (see its subclasses).
        """
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        cap = min(max_bytes, self._limits.max_download_bytes)
        scheme = check_url_text(url, self._limits.max_url_chars)
        self._policy.check_scheme(url, scheme)
        if scheme in ("http", "https"):
            return self._http.download(url, dst, cap)
        if scheme == "data":
            data = decode_data_url(url, cap)
            try:
                dst.write(data)
            except OSError as e:
                raise TransferFailed(url, f"writing the download failed: {e}") from e
            return len(data)
        store, parts = self._local_target(url, scheme)
        return store.read(url, parts, dst, cap)

    def upload(self, url: str, src: BinaryIO, size: int) -> None:
        """Store the next ``size`` bytes of ``src`` at ``url``; never overwrite.

        http(s) uploads are a ``PUT`` with ``Content-Type:
        application/x-binary`` and an explicit ``Content-Length`` and succeed
        on exactly HTTP 200. ``file`` and ``fusion`` targets must not exist.

        Raises:
            FileAgentError: any refusal or failure (see its subclasses).
        """
        if size < 0:
            raise ValueError("size must not be negative")
        scheme = check_url_text(url, self._limits.max_url_chars)
        self._policy.check_scheme(url, scheme)
        if size > self._limits.max_upload_bytes:
            cap = self._limits.max_upload_bytes
            raise TooLarge(url, f"{size} bytes exceed the upload cap of {cap} bytes")
        if scheme in ("http", "https"):
            self._http.upload(url, src, size)
            return
        if scheme == "data":
            raise PolicyViolation(url, "data: URLs cannot be uploaded to")
        store, parts = self._local_target(url, scheme)
        store.write(url, parts, src, size)

    def _local_target(self, url: str, scheme: str) -> tuple[LocalStore, list[str]]:
        if scheme == "fusion":
            parts = fusion_url_path(url)
            if self._fusion is None:  # excluded by UrlPolicy validation
                raise PolicyViolation(url, "no fusion directory configured")
            return self._fusion, parts
        parts = file_url_path(url)
        for store in self._roots:
            root = [p for p in store.root.split("/") if p]
            if len(parts) > len(root) and parts[: len(root)] == root:
                return store, parts[len(root) :]
        raise PolicyViolation(url, "path is outside every allowed file root")
