"""MesaPy mode: Teaclave's Python 2.7 functions on confide's CPython 3 executor.

Below the services and the executors, beside the foundation (it imports none
of confide): the management service resolves a Python function's dialect and
translates MesaPy-mode payloads at registration (``resolve``); the scheduler
stages the translation (``staged_payload``); the ``mesapy`` executor turns it
into the program its sandbox runs (``sandbox_program``). See
docs/compatibility-mesapy.md.
"""

from ._program import runtime_source, sandbox_program
from ._staged import (
    MAGIC,
    PYTHON2,
    PYTHON3,
    Resolved,
    declared_dialect,
    pack,
    resolve,
    staged_payload,
    unpack,
)
from ._translate import MAX_SOURCE_BYTES, Translation, TranslationError, translate

__all__ = [
    "MAGIC",
    "MAX_SOURCE_BYTES",
    "PYTHON2",
    "PYTHON3",
    "Resolved",
    "Translation",
    "TranslationError",
    "declared_dialect",
    "pack",
    "resolve",
    "runtime_source",
    "sandbox_program",
    "staged_payload",
    "translate",
    "unpack",
]
