"""Rules for new names that identify someone or something (issue 10, item 4).

A user id, an organisation attribute or a function name is shown to people
who decide from it whom they trust. So a *new* one must look like what it is:

* at most ``max_chars`` characters;
* no leading or trailing whitespace (``"admin "`` is not ``"admin"``);
* no control, format or invisible character: Unicode categories Cc, Cf (this
  covers the bidi overrides U+202A-202E and isolates U+2066-2069, the
  zero-width U+200B-200D, U+2060, U+FEFF), Cs, Co, Cn, Zl, Zp, and the other
  default-ignorable code points that render as nothing (variation selectors,
  Hangul fillers, the combining grapheme joiner, ...);
* in Unicode normalisation form NFC. A name in another form is refused, not
  normalised: the client then knows exactly which name it holds.

User ids are moreover unique under :func:`name_key` (NFKC case folding), so
``ADMIN`` or full-width ``admin`` cannot sit beside ``admin``.

Only creation is checked: names stored before these rules keep working for
login and lookups. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import unicodedata

__all__ = ["name_key", "name_problem"]

_REFUSED_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "a format character: bidi control, zero-width or other invisible",
    "Cs": "a surrogate",
    "Co": "a private-use character",
    "Cn": "an unassigned code point",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}
# Default_Ignorable_Code_Point (Unicode DerivedCoreProperties) outside the
# categories above: they render as nothing.
_INVISIBLE_RANGES = (
    (0x034F, 0x034F),  # COMBINING GRAPHEME JOINER
    (0x115F, 0x1160),  # HANGUL CHOSEONG/JUNGSEONG FILLER
    (0x17B4, 0x17B5),  # KHMER VOWEL INHERENT AQ/AA
    (0x180B, 0x180F),  # MONGOLIAN FREE VARIATION SELECTORS
    (0x3164, 0x3164),  # HANGUL FILLER
    (0xFE00, 0xFE0F),  # VARIATION SELECTORS
    (0xFFA0, 0xFFA0),  # HALFWIDTH HANGUL FILLER
    (0xE0100, 0xE01EF),  # VARIATION SELECTORS SUPPLEMENT
)


def _invisible(code: int) -> bool:
    return any(lo <= code <= hi for lo, hi in _INVISIBLE_RANGES)


def name_problem(name: str, max_chars: int) -> str | None:
    """Which rule a new ``name`` breaks (a phrase for the error message), or None."""
    if len(name) > max_chars:
        return f"longer than {max_chars} characters"
    if name != name.strip():
        return "leading or trailing whitespace"
    for ch in name:
        what = _REFUSED_CATEGORIES.get(unicodedata.category(ch))
        if what is None and _invisible(ord(ch)):
            what = "an invisible character"
        if what is not None:
            return f"contains U+{ord(ch):04X} ({what})"
    if not unicodedata.is_normalized("NFC", name):
        return "not in Unicode normalisation form NFC"
    return None


def name_key(name: str) -> str:
    """The key under which user ids are unique: SHA-256 of its NFKC case fold.

    ``NFKC(casefold(NFKC(name)))`` identifies names that differ only in case
    or in compatibility form (full-width letters, ligatures). Hashed, so the
    key has a fixed length whatever the name.
    """
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    return hashlib.sha256(folded.encode()).hexdigest()
