"""Find the ``confide`` commands the docs show, and resolve them against the command tree.

A command is "shown" when it appears in an inline code span or in a shell code
block (```bash, ```sh, ```console or an unlabelled fence) of README.md or docs/:
``confide user login alice -d confide-data``, ``.venv/bin/confide serve …``,
``X=$(confide -p alice task create …)`` (a continued line is read whole),
``confide task create|assign|approve`` (alternatives). Each is walked down the
click tree that ``confide.cli.app`` builds (a group's own options, such as
``--profile NAME``, are stepped over): a word that names no subcommand of a
group, or an option the command does not have, is an error with its file and line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SHELL_FENCES = {"", "bash", "sh", "shell", "console"}
_FENCE = re.compile(r"^\s*```(\S*)")
_SPAN = re.compile(r"`([^`]+)`")
_COMMENT = re.compile(r"(?:^|\s)#.*$")  # a shell comment
# ``confide`` as a command word: at the start, after whitespace, ``(`` (``$(confide …)``)
# or a bin directory (``.venv/bin/confide``; not ``/var/lib/confide``), followed by
# whitespace or the end.
_INVOCATION = re.compile(r"(?:^|(?<=[\s(])|(?<=bin/))confide(?=\s|$)"
                         r"(?P<rest>[^#;&|`)]*(?:\|[a-z][^#;&`)]*)?)")
_ELLIPSIS = {"…", "..."}


@dataclass(frozen=True)
class Mention:
    """One ``confide …`` invocation shown in a document."""

    where: str  # "docs/x.md:12"
    words: tuple[str, ...]  # the words after ``confide``


@dataclass(frozen=True)
class Resolved:
    """A mention walked down the command tree."""

    mention: Mention
    path: tuple[str, ...]  # the command names, e.g. ("user", "login")
    error: str | None  # why the docs are wrong, or None


def doc_files(repo: Path = REPO) -> list[Path]:
    return [repo / "README.md", *sorted((repo / "docs").rglob("*.md"))]


def _code_lines(text: str) -> Iterator[tuple[int, str]]:
    fence: str | None = None
    pending: tuple[int, str] | None = None  # a shell line continued with a backslash
    for lineno, line in enumerate(text.splitlines(), 1):
        m = _FENCE.match(line)
        if m:
            fence = m.group(1).lower() if fence is None else None
            continue
        if fence is not None:
            if fence in SHELL_FENCES:
                code = _COMMENT.sub("", line)
                if pending is not None:
                    lineno, code = pending[0], pending[1] + " " + code.strip()
                    pending = None
                if code.rstrip().endswith("\\"):
                    pending = (lineno, code.rstrip()[:-1])
                    continue
                yield lineno, code
        else:
            for span in _SPAN.finditer(line):
                yield lineno, span.group(1)


def mentions(text: str, name: str) -> Iterator[Mention]:
    """Every ``confide`` invocation in ``text``'s code (``name`` labels the places)."""
    for lineno, code in _code_lines(text):
        for m in _INVOCATION.finditer(code):
            yield Mention(f"{name}:{lineno}", tuple(m.group("rest").split()))


def _option_names(command: Any) -> set[str]:
    names = {"--help"}
    for param in command.params:
        names.update(o for o in (*param.opts, *param.secondary_opts) if o.startswith("-"))
    return names


def resolve(root: Any, mention: Mention) -> list[Resolved]:
    """Walk ``mention`` down the click tree ``root``; one result per alternative (a|b)."""
    return _walk(root, mention, list(mention.words), ())


def _group_option(command: Any, word: str) -> Any:
    """The group's own option ``word`` names (``--profile``), or None."""
    name = word.split("=", 1)[0]
    for param in command.params:
        if name in (*param.opts, *param.secondary_opts):
            return param
    return None


def _walk(command: Any, mention: Mention, words: list[str],
          path: tuple[str, ...]) -> list[Resolved]:
    while words and hasattr(command, "commands"):
        word = words[0]
        option = _group_option(command, word) if word.startswith("-") else None
        if option is not None:  # e.g. ``confide -p alice task …``: step over it and its value
            takes_value = not option.is_flag and "=" not in word
            words = words[2:] if takes_value else words[1:]
            continue
        if word in _ELLIPSIS or word.startswith("-"):
            break
        out: list[Resolved] = []
        for alternative in word.split("|"):
            sub = command.commands.get(alternative)
            if sub is None:
                shown = " ".join(("confide", *path, alternative))
                return [Resolved(mention, path, f"`{shown}`: no such command")]
            out += _walk(sub, mention, words[1:], (*path, alternative))
        return out
    for word in words:
        if word.startswith("-") and word not in _ELLIPSIS and word != "-":
            option = word.split("=", 1)[0]
            if option not in _option_names(command):
                shown = " ".join(("confide", *path))
                return [Resolved(mention, path, f"`{shown}` has no option {option}")]
    return [Resolved(mention, path, None)]


def documented(root: Any, repo: Path = REPO) -> list[Resolved]:
    """Every invocation the README and docs/ show, resolved against ``root``."""
    found: list[Resolved] = []
    for doc in doc_files(repo):
        name = str(doc.relative_to(repo))
        for mention in mentions(doc.read_text(encoding="utf-8"), name):
            found += resolve(root, mention)
    return found
