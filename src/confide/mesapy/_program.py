"""The program the sandbox runs for a MesaPy-mode function.

It is ordinary Python 3 source for the ``mesapy`` executor's harness (the
sandbox is unchanged): it executes the runtime (``_runtime.py``, as text) in a
namespace of its own, loads the translation through it, and defines the
``entrypoint(argv)`` the harness calls.
"""

from __future__ import annotations

import functools
from pathlib import Path

from ._staged import unpack

__all__ = ["runtime_source", "sandbox_program"]

_PROGRAM = """\
def _confide_mesapy_load():
    namespace = {"__name__": "confide_mesapy_runtime", "__builtins__": __builtins__}
    exec(compile(%(runtime)r, "<confide-mesapy>", "exec"), namespace)
    return namespace["load"](%(source)r, %(true_division)r)

entrypoint = _confide_mesapy_load()
del _confide_mesapy_load
"""


@functools.cache
def runtime_source() -> str:
    """The runtime's source text, as shipped into the sandbox."""
    return (Path(__file__).with_name("_runtime.py")).read_text(encoding="utf-8")


def sandbox_program(staged: bytes) -> bytes | None:
    """The harness payload for a staged MesaPy-mode function; None for Python 3.

    Raises:
        ValueError: a malformed MesaPy-mode payload.
    """
    translation = unpack(staged)
    if translation is None:
        return None
    return (_PROGRAM % {"runtime": runtime_source(), "source": translation.source,
                        "true_division": translation.true_division}).encode("utf-8")
