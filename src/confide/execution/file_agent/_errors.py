"""The file agent's error hierarchy and URL redaction for messages.

Every failure the file agent reports is a :class:`FileAgentError`; the worker
turns any of them into the task result *Finished + Err* ``ocall error = 1``
(spec §5.1), the reason Teaclave gives for every transfer failure. The finer
classes and messages are for logs and tests; they never carry a query string
(presigned URLs keep credentials there) nor the payload of a ``data:`` URL.
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = [
    "AlreadyExists",
    "FileAgentError",
    "InvalidUrl",
    "PolicyViolation",
    "Timeout",
    "TooLarge",
    "TransferFailed",
    "redact_url",
]

_MAX_SHOWN_CHARS = 256


def redact_url(url: str) -> str:
    """Return ``url`` in a form safe to log.

    The query string and fragment are replaced by ``?<redacted>``, user info is
    dropped, a ``data:`` payload is replaced by its length and the result is
    cut to a bounded length. Never raises, whatever ``url`` is.

    Args:
        url: any string, possibly not a URL at all.

    Returns:
        A printable, bounded string.
    """
    text = url
    if text[:5].lower() == "data:":
        head, sep, payload = text.partition(",")
        text = f"{head},<{len(payload)} chars>" if sep else "data:<malformed>"
    else:
        try:
            parts = urlsplit(text)
            netloc = parts.netloc.rpartition("@")[2]
            text = f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else parts.path
            if parts.query or parts.fragment:
                text += "?<redacted>"
        except ValueError:
            text = "<unparseable url>"
    text = "".join(c if c.isprintable() else "?" for c in text)
    if len(text) > _MAX_SHOWN_CHARS:
        text = text[:_MAX_SHOWN_CHARS] + "..."
    return text


class FileAgentError(Exception):
    """Base of every error raised by the file agent.

    Attributes:
        url: the URL concerned, redacted (see :func:`redact_url`).
        reason: what went wrong, without the URL.
        task_reason: the ``result.Err.reason`` a task gets for any transfer
            failure, as in Teaclave (spec §5.1).
    """

    task_reason = "ocall error = 1"

    def __init__(self, url: str, reason: str) -> None:
        self.url = redact_url(url)
        self.reason = reason
        super().__init__(f"{type(self).__name__}: {self.url}: {reason}")


class InvalidUrl(FileAgentError):
    """The URL cannot be parsed or has a form the agent never accepts."""


class PolicyViolation(FileAgentError):
    """The URL is well formed but the :class:`UrlPolicy` refuses it."""


class TooLarge(FileAgentError):
    """A transfer would exceed its size cap."""


class Timeout(FileAgentError):
    """Connecting, a socket read/write, or the whole transfer took too long."""


class TransferFailed(FileAgentError):
    """The peer or the file system failed the transfer (status, I/O, TLS...)."""


class AlreadyExists(FileAgentError):
    """An upload target exists already; the agent never overwrites."""
