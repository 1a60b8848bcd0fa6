"""The file agent: fetches task inputs and stores task outputs (spec §5.1).

URL fetching is a security boundary (server-side request forgery): a
:class:`UrlPolicy` allow-lists schemes, hosts and address classes, every
redirect hop is re-checked, connections are pinned to the checked address,
local paths cannot leave their root, and every size is capped. See
``docs/file-agent.md``.
"""

from ._agent import FileAgent
from ._errors import (
    AlreadyExists,
    FileAgentError,
    InvalidUrl,
    PolicyViolation,
    Timeout,
    TooLarge,
    TransferFailed,
    redact_url,
)
from ._http import Resolver, system_resolver
from ._policy import UrlPolicy, address_class
from ._receive import BufferedDestination

__all__ = [
    "AlreadyExists",
    "BufferedDestination",
    "FileAgent",
    "FileAgentError",
    "InvalidUrl",
    "PolicyViolation",
    "Resolver",
    "Timeout",
    "TooLarge",
    "TransferFailed",
    "UrlPolicy",
    "address_class",
    "redact_url",
    "system_resolver",
]
