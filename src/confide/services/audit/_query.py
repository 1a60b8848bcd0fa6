"""A small subset of tantivy's query syntax for QueryAuditLogs (spec §3.8).

Clauses are separated by white space and combined with OR (tantivy's
default); ``+clause`` must match, ``-clause`` must not; ``AND`` between two
clauses makes both required, ``OR`` is the default. A clause is ``term``,
``"a phrase"`` or either prefixed by a field (``message:`` — the default —
or ``user:``). Fields are tokenised on non-alphanumeric characters and
lower-cased, so ``message:register_function`` matches the phrase
``register function``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["AuditQuery", "QuerySyntaxError", "tokens"]

_FIELDS = ("message", "user")
_TOKEN = re.compile(r"[0-9A-Za-z]+")


class QuerySyntaxError(ValueError):
    pass


def tokens(text: str) -> list[str]:
    return [t.lower() for t in _TOKEN.findall(text)]


@dataclass(frozen=True)
class _Clause:
    field: str
    phrase: tuple[str, ...]
    occur: str  # "should" | "must" | "not"

    def matches(self, fields: dict[str, list[str]]) -> bool:
        hay = fields[self.field]
        n = len(self.phrase)
        if n == 0:
            return False
        return any(tuple(hay[i:i + n]) == self.phrase for i in range(len(hay) - n + 1))


def _split(query: str) -> list[str]:
    parts: list[str] = []
    i = 0
    while i < len(query):
        if query[i].isspace():
            i += 1
            continue
        j = i
        while j < len(query) and not query[j].isspace():
            if query[j] == '"':
                end = query.find('"', j + 1)
                if end < 0:
                    raise QuerySyntaxError("unbalanced quote")
                j = end + 1
            else:
                j += 1
        parts.append(query[i:j])
        i = j
    return parts


class AuditQuery:
    def __init__(self, query: str) -> None:
        self.clauses: list[_Clause] = []
        pending_and = False
        for part in _split(query):
            if part == "AND":
                if not self.clauses:
                    raise QuerySyntaxError("AND without a left operand")
                pending_and = True
                continue
            if part == "OR":
                continue
            occur = "should"
            if part[0] in "+-":
                occur = "must" if part[0] == "+" else "not"
                part = part[1:]
            field = "message"
            name, sep, rest = part.partition(":")
            if sep and not name.startswith('"'):
                if name not in _FIELDS:
                    raise QuerySyntaxError(f"unknown field {name!r}")
                field, part = name, rest
            if part.startswith('"'):
                if len(part) < 2 or not part.endswith('"'):
                    raise QuerySyntaxError("malformed phrase")
                part = part[1:-1]
            if not part:
                raise QuerySyntaxError("empty clause")
            if pending_and:
                if occur == "should":
                    occur = "must"
                last = self.clauses[-1]
                if last.occur == "should":
                    self.clauses[-1] = _Clause(last.field, last.phrase, "must")
                pending_and = False
            self.clauses.append(_Clause(field, tuple(tokens(part)), occur))
        if pending_and:
            raise QuerySyntaxError("AND without a right operand")
        if not self.clauses:
            raise QuerySyntaxError("empty query")

    def matches(self, user: str, message: str) -> bool:
        fields = {"user": tokens(user), "message": tokens(message)}
        musts = [c for c in self.clauses if c.occur == "must"]
        shoulds = [c for c in self.clauses if c.occur == "should"]
        if any(c.matches(fields) for c in self.clauses if c.occur == "not"):
            return False
        if not all(c.matches(fields) for c in musts):
            return False
        if musts:
            return True  # with required clauses, optional ones only rank
        return any(c.matches(fields) for c in shoulds)  # a purely negative query matches nothing
