"""The error hierarchy of :mod:`confide.crypto`.

``CryptoError`` is the package's single base class; every foreign exception
(``cryptography.exceptions.InvalidTag``, ``OverflowError`` …) is wrapped once,
at the point it is raised, with ``raise … from e``.
"""

from __future__ import annotations

__all__ = ["CryptoError", "CryptoInfoError", "CryptoLimitError", "IntegrityError"]


class CryptoError(Exception):
    """Base of every error raised by :mod:`confide.crypto`.

    Raised directly for misuse by the caller (a non-seekable stream where the
    format needs one, a missing ``file_name`` …).
    """


class CryptoInfoError(CryptoError):
    """A schema/key/iv triple is invalid (spec §3.5).

    The message is Teaclave's text, e.g. ``Invalid key length for AesGcm128: 15``.
    """


class IntegrityError(CryptoError):
    """Untrusted ciphertext failed a check; the message names the check.

    Covers wrong keys, flipped bytes, truncation, reordering, extension, a
    malformed header, an embedded-name mismatch and a cmac mismatch: these are
    indistinguishable to an honest caller and must all be treated as tampering.
    """


class CryptoLimitError(CryptoError):
    """An untrusted size exceeds a cap of :class:`confide.config.Limits`."""
