"""Presigned blob URLs: names, signing and verification (pure, no I/O, no clock).

Format::

    <base>/blobs/<name>?expires=<unix seconds>&kid=<key version>&sig=<64 hex digits>

``sig`` is HMAC-SHA256 under version ``kid`` of the presign key (kid
``presign-<kid>``, ``confide.keys``) over
``b"confide-blob-v2\\0" + method + b"\\0" + name + b"\\0" + expires + b"\\0" + kid``
(all ASCII). A URL without ``kid`` (issued before key rotation) is checked
under version 1 with the v1 message, the same without ``\\0 + kid`` and with
``confide-blob-v1``; it stays valid until it expires, as do URLs signed by any
older version. The method is part of the MAC, so a GET URL cannot be used to
PUT and vice versa. ``RW`` signs a URL valid for both: it is what an output is
registered with, so the worker can write it and a later task read it back
(RegisterInputFromOutput copies the URL); PUT still never overwrites. A URL is
valid while ``now <= expires``.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from ._errors import InvalidObjectName, SignatureExpired, SignatureInvalid

__all__ = [
    "BLOB_PATH_PREFIX",
    "METHODS",
    "MIN_KEY_BYTES",
    "parse_kid_param",
    "presign_url",
    "sign",
    "validate_object_name",
    "verify_presigned",
]

BLOB_PATH_PREFIX = "/blobs/"
METHODS = frozenset({"GET", "PUT", "RW"})
_HTTP_METHODS = frozenset({"GET", "PUT"})
MIN_KEY_BYTES = 32
MAX_SEGMENTS = 8
_DOMAIN = b"confide-blob-v1\x00"
_DOMAIN_V2 = b"confide-blob-v2\x00"
_KID = re.compile(r"[1-9][0-9]{0,9}\Z")
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}\Z")
_EXPIRES = re.compile(r"(?:0|[1-9][0-9]{0,11})\Z")
_SIG = re.compile(r"[0-9a-f]{64}\Z")


def validate_object_name(name: str, max_chars: int) -> None:
    """Check an object name: 1-8 ``/``-separated segments of ``[A-Za-z0-9._-]``.

    Each segment starts with a letter or digit, so ``.``, ``..`` and hidden
    names cannot occur; nothing is percent-decoded.

    Raises:
        InvalidObjectName: with the specific reason.
    """
    if not name:
        raise InvalidObjectName("object name is empty")
    if len(name) > max_chars:
        raise InvalidObjectName(f"object name has {len(name)} chars, more than {max_chars}")
    segments = name.split("/")
    if len(segments) > MAX_SEGMENTS:
        raise InvalidObjectName(f"object name has more than {MAX_SEGMENTS} segments")
    for segment in segments:
        if not _SEGMENT.match(segment):
            raise InvalidObjectName(
                f"object name segment {segment[:64]!r} is empty, starts with a dot "
                "or dash, or has a character outside [A-Za-z0-9._-]"
            )


def _check_key(key: bytes) -> None:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"blob store key must have at least {MIN_KEY_BYTES} bytes")


def sign(key: bytes, method: str, object_name: str, expires_at: int,
         kid: int | None = None) -> str:
    """The hex HMAC-SHA256 tag of a presigned URL (name already validated);
    ``kid`` ``None``: the format before key rotation."""
    _check_key(key)
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}")
    if kid is None:
        message = _DOMAIN + f"{method}\x00{object_name}\x00{expires_at}".encode("ascii")
    else:
        message = _DOMAIN_V2 + f"{method}\x00{object_name}\x00{expires_at}\x00{kid}".encode(
            "ascii")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def presign_url(
    base_url: str,
    key: bytes,
    object_name: str,
    method: str,
    expires_at: int,
    *,
    max_name_chars: int,
    kid: int | None = None,
) -> str:
    """Build a presigned URL (the function the platform's RPC calls).

    Args:
        base_url: ``http(s)://host:port`` of the blob store, no trailing slash.
        key: the store's HMAC key (at least 32 bytes, from the platform secret).
        object_name: see :func:`validate_object_name`.
        method: ``"GET"`` or ``"PUT"``.
        expires_at: expiry as Unix seconds (inclusive).
        max_name_chars: ``Limits.max_blob_name_chars``.
        kid: the version of ``key`` (``None``: a URL in the format before rotation).

    Raises:
        InvalidObjectName: bad name.
        ValueError: bad method, expiry or key.
    """
    validate_object_name(object_name, max_name_chars)
    if not 0 <= expires_at < 10**12:
        raise ValueError("expires_at out of range")
    tag = sign(key, method, object_name, expires_at, kid)
    kid_param = "" if kid is None else f"&kid={kid}"
    return (f"{base_url.rstrip('/')}{BLOB_PATH_PREFIX}{object_name}?expires={expires_at}"
            f"{kid_param}&sig={tag}")


def parse_kid_param(unverified_kid: str) -> int:
    """The key version of a URL's ``kid`` parameter.

    Raises:
        SignatureInvalid: not a version number.
    """
    if not _KID.match(unverified_kid):
        raise SignatureInvalid("malformed kid parameter")
    version = int(unverified_kid)
    if version >= 2**32:
        raise SignatureInvalid("malformed kid parameter")
    return version


def verify_presigned(
    key: bytes,
    method: str,
    object_name: str,
    unverified_expires: str,
    unverified_sig: str,
    *,
    now: float,
    kid: int | None = None,
) -> None:
    """Verify the signature and expiry of a presigned request.

    The tag is compared in constant time; the expiry is checked only after
    the tag verified.

    Raises:
        SignatureInvalid: malformed parameters or a tag that does not verify
            (forged, other method, other name, altered expiry).
        SignatureExpired: ``now`` is after the signed expiry.
    """
    if method not in _HTTP_METHODS:
        raise SignatureInvalid(f"method {method[:16]!r} cannot be presigned")
    if not object_name.isascii() or "\x00" in object_name:
        raise SignatureInvalid("object name cannot have been signed")
    if not _EXPIRES.match(unverified_expires):
        raise SignatureInvalid("malformed expires parameter")
    if not _SIG.match(unverified_sig):
        raise SignatureInvalid("malformed sig parameter")
    expires = int(unverified_expires)
    valid = [hmac.compare_digest(sign(key, m, object_name, expires, kid), unverified_sig)
             for m in (method, "RW")]
    if not any(valid):
        raise SignatureInvalid("signature does not verify")
    if now > int(unverified_expires):
        raise SignatureExpired(f"presigned URL expired at {int(unverified_expires)}")
