"""Python 2 -> Python 3 source translation with fissix (a maintained lib2to3).

Runs at registration, on the server, never in the sandbox. The result is a
pure function of the payload and the pinned fissix version (the fixers run in
a fixed order on one tool), so storing it is the same as recomputing it.

fissix normally loads its grammar tables from pickles in the user's cache
directory (and writes them there). confide generates them in memory instead:
no file outside the package is read, let alone unpickled.
"""

from __future__ import annotations

import codecs
import re
import threading
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_SOURCE_BYTES", "Translation", "TranslationError", "translate"]

#: Largest payload translated. fissix translates 120-150 KB a second (bench/mesapy.py); one
#: translation runs at a time, so the cap bounds how long a registration can
#: hold the translator (Teaclave's own MesaPy payloads are a few KB).
MAX_SOURCE_BYTES = 256 * 1024

_COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")


class TranslationError(ValueError):
    """The payload is not Python 2 that can be translated; ``str()`` names the line."""

    def __init__(self, line: int | None, message: str) -> None:
        self.line = line
        where = f"line {line}: " if line is not None else ""
        super().__init__(f"MesaPy payload does not translate to Python 3: {where}{message}")


@dataclass(frozen=True)
class Translation:
    """The Python 3 text of a Python 2 payload."""

    source: bytes  # UTF-8 Python 3 source; the payload's lines (2to3 joins a few continued ones)
    true_division: bool  # the payload has ``from __future__ import division``


_lock = threading.Lock()
_tool: Any = None
_future_features: Any = None


def _refactoring_tool() -> Any:
    """The one RefactoringTool (built on first use; callers hold ``_lock``)."""
    global _tool, _future_features
    if _tool is None:
        import fissix  # noqa: F401  (installs fissix's patches first, then ours replace them)
        from fissix.pgen2 import driver, pgen

        def load_grammar(gt: str = "Grammar.txt", *_args: object, **_kw: object) -> Any:
            return pgen.generate_grammar(gt)

        driver.load_grammar = load_grammar  # in memory: no cache file read or written
        from fissix import refactor

        fixers = refactor.get_fixers_from_package("fissix.fixes")
        _tool = refactor.RefactoringTool(sorted(fixers))  # the explicit-only fixers stay off
        _future_features = refactor._detect_future_features
    return _tool


def _decode(payload: bytes) -> str:
    """The payload as text: its PEP 263 cookie (first two lines), else UTF-8."""
    if b"\x00" in payload:
        line = payload.count(b"\n", 0, payload.index(b"\x00")) + 1
        raise TranslationError(line, "source code cannot contain null bytes")
    encoding = "utf-8"
    for raw in payload.split(b"\n", 2)[:2]:
        match = _COOKIE.match(raw)
        if match:
            encoding = match.group(1).decode("ascii")
            break
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise TranslationError(None, f"unknown source encoding {encoding[:40]!r}") from None
    try:
        text = payload.decode(encoding)
    except UnicodeDecodeError as e:
        line = payload.count(b"\n", 0, e.start) + 1
        raise TranslationError(line, f"not valid {encoding} text") from None
    return text[1:] if text.startswith("\ufeff") else text


def _parse_error_line(exc: BaseException) -> int | None:
    """The line fissix's parser or tokenizer names in ``exc`` (None if it names none)."""
    lineno = getattr(exc, "lineno", None)  # IndentationError from the tokenizer
    if isinstance(lineno, int):
        return lineno
    context = getattr(exc, "context", None)  # ParseError: (prefix, (line, column))
    if isinstance(context, tuple) and len(context) == 2 and isinstance(context[1], tuple) \
            and context[1] and isinstance(context[1][0], int):
        return context[1][0]
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    if len(args) == 2 and isinstance(args[1], tuple) and args[1] \
            and isinstance(args[1][0], int):  # TokenError: (message, (line, column))
        return args[1][0]
    return None


def _expand_indentation_tabs(source: str) -> str:
    """Tabs in the indentation of code lines as Python 2 read them (to columns of 8).

    Python 2 accepted tabs and spaces mixed; Python 3 refuses them (TabError).
    Only a line where a token starts after nothing but whitespace changes, so a
    line inside a multi-line string keeps its text.
    """
    import io
    import tokenize

    rows: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in (tokenize.INDENT, tokenize.DEDENT, tokenize.NL, tokenize.NEWLINE,
                              tokenize.ENDMARKER):
            rows.add(token.start[0])
    lines = source.splitlines(True)
    for row in rows:
        line = lines[row - 1]
        body = line.lstrip(" \t\f")
        indent = line[: len(line) - len(body)]
        if "\t" in indent:
            lines[row - 1] = indent.expandtabs(8) + body
    return "".join(lines)


def _compile_check(source: str) -> str:
    """``source`` if it compiles as Python 3 (tabs in indentation read as Python 2 did).

    Raises:
        TranslationError: it does not compile.
    """
    try:
        compile(source, "<function>", "exec", dont_inherit=True)
        return source
    except TabError:
        try:
            expanded = _expand_indentation_tabs(source)
        except (SyntaxError, ValueError, IndentationError, RecursionError, MemoryError):
            expanded = source
        if expanded != source:
            return _compile_check(expanded)
        raise TranslationError(None, "inconsistent use of tabs and spaces") from None
    except SyntaxError as e:
        raise TranslationError(e.lineno, f"{e.msg} (after translation)") from None
    except (ValueError, RecursionError, MemoryError) as e:  # nesting too deep for the compiler
        raise TranslationError(None, f"{type(e).__name__} compiling the translation") from None


def translate(payload: bytes) -> Translation:
    """Translate a Python 2 payload to Python 3.

    Raises:
        TranslationError: the payload does not parse as Python 2, or its
            translation does not compile as Python 3 (the message names the line).
    """
    if len(payload) > MAX_SOURCE_BYTES:
        raise TranslationError(None, f"the payload has {len(payload)} bytes; MesaPy mode "
                                     f"translates at most {MAX_SOURCE_BYTES}")
    text = _decode(payload)
    if not text.endswith("\n"):
        text += "\n"  # lib2to3's parser needs the final newline
    with _lock:
        tool = _refactoring_tool()
        try:
            tree = tool.refactor_string(text, "<function>")
        except Exception as e:  # noqa: BLE001 - ParseError, TokenError, IndentationError...
            detail = type(e).__name__
            value = getattr(e, "value", None)
            if isinstance(value, str) and value.strip():
                detail = f"invalid Python 2 syntax near {value.strip()[:40]!r}"
            elif type(e).__name__ == "TokenError" and getattr(e, "args", None):
                detail = str(e.args[0])[:80]
            elif type(e).__name__ == "ParseError":
                detail = "invalid Python 2 syntax (indentation or an unfinished statement)"
            elif isinstance(e, SyntaxError) and e.msg:  # IndentationError from the tokenizer
                detail = e.msg[:80]
            raise TranslationError(_parse_error_line(e), detail) from None
        true_division = "division" in _future_features(text)
    source = str(tree)
    if source.endswith("\n") and not payload.endswith(b"\n"):
        source = source[:-1]
    source = _compile_check(source)
    return Translation(source.encode("utf-8"), true_division)
