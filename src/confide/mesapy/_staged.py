"""Which dialect a Python function is in, and how a MesaPy-mode function travels.

A function registered with ``executor_type == "python"`` is either
``python3`` (CPython 3 semantics, confide's behaviour so far) or ``python2``
(*MesaPy mode*: Python 2.7 / micronumpy semantics, translated at registration). The choice
(docs/compatibility-mesapy.md):

1. a declaration in the payload's first two lines wins: a ``#!`` line naming
   ``python2`` / ``mesapy`` or a comment ``# confide: mesapy`` selects MesaPy
   mode; ``#!`` naming ``python3`` or ``# confide: python3`` selects Python 3;
2. otherwise the API decides: Teaclave's ``RegisterFunction`` /
   ``UpdateFunction`` mean MesaPy mode (a Teaclave client's Python *is* MesaPy's
   Python 2.7), except for a payload that is not Python 2 but compiles as
   Python 3, or one over ``MAX_SOURCE_BYTES``; confide.v1's
   ``RegisterFunction`` means Python 3.

The worker learns the dialect from the staged payload: a MesaPy-mode function
is staged as ``MAGIC``, a flags line and the translation. ``MAGIC`` starts with
a NUL byte, which no Python source may contain, and a Python 3 payload that
happens to start with it is staged behind one more NUL: it still fails to
compile, exactly as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._translate import MAX_SOURCE_BYTES, Translation, TranslationError, translate

__all__ = [
    "MAGIC",
    "PYTHON2",
    "PYTHON3",
    "Resolved",
    "declared_dialect",
    "pack",
    "resolve",
    "staged_payload",
    "unpack",
]

PYTHON2 = "python2"  # MesaPy mode: MesaPy's Python 2.7
PYTHON3 = "python3"
MAGIC = b"\x00confide-mesapy/1\n"
_FLAGS = {b"division=floor\n": False, b"division=true\n": True}

_SHEBANG = re.compile(rb"^#!.*?\b(python2(?:\.\d+)?|mesapy|pypy|python3(?:\.\d+)?)\b")
_DECLARATION = re.compile(rb"^[ \t]*#.*?\bconfide:[ \t]*(mesapy|python2|python3)\b")


def declared_dialect(payload: bytes) -> str | None:
    """The dialect the payload's first two lines declare, or None."""
    for line in payload.split(b"\n", 2)[:2]:
        match = _SHEBANG.match(line) or _DECLARATION.match(line)
        if match:
            return PYTHON3 if match.group(1).startswith(b"python3") else PYTHON2
    return None


def pack(translation: Translation) -> bytes:
    """The staged form of a MesaPy-mode function."""
    flags = b"division=true\n" if translation.true_division else b"division=floor\n"
    return MAGIC + flags + translation.source


def unpack(staged: bytes) -> Translation | None:
    """The translation in a staged payload; None for a Python 3 payload.

    Raises:
        ValueError: the payload starts with ``MAGIC`` but is not well formed.
    """
    if not staged.startswith(MAGIC):
        return None
    end = staged.find(b"\n", len(MAGIC))
    flags = staged[len(MAGIC): end + 1] if end >= 0 else b""
    if flags not in _FLAGS:
        raise ValueError("malformed MesaPy-mode payload")
    return Translation(staged[end + 1:], _FLAGS[flags])


def staged_payload(dialect: str, payload: bytes, translation: bytes) -> bytes:
    """What the worker receives for a function of ``dialect``."""
    if dialect == PYTHON2:
        return translation
    return b"\x00" + payload if payload.startswith(MAGIC) else payload


@dataclass(frozen=True)
class Resolved:
    dialect: str  # PYTHON3 or PYTHON2
    translation: bytes  # pack()ed, b"" for PYTHON3


def _compiles_as_python3(payload: bytes) -> bool:
    try:
        compile(payload, "<function>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def resolve(payload: bytes, default: str) -> Resolved:
    """The dialect of a Python payload, translated if it is MesaPy.

    ``default`` is the API's choice when the payload declares none.

    Raises:
        TranslationError: MesaPy mode, and the payload does not translate.
    """
    declared = declared_dialect(payload)
    dialect = declared or default
    if dialect == PYTHON3:
        return Resolved(PYTHON3, b"")
    if declared is None and len(payload) > MAX_SOURCE_BYTES:
        return Resolved(PYTHON3, b"")  # too large for MesaPy mode: never parsed on the server
    try:
        return Resolved(PYTHON2, pack(translate(payload)))
    except TranslationError:
        if declared is None and _compiles_as_python3(payload):
            return Resolved(PYTHON3, b"")  # not Python 2 at all, but valid Python 3
        raise
