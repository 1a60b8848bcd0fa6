"""The blob store's error hierarchy."""

from __future__ import annotations

__all__ = ["BlobStoreError", "InvalidObjectName", "SignatureExpired", "SignatureInvalid"]


class BlobStoreError(Exception):
    """Base of every error raised by the blob store and its URL signing."""


class InvalidObjectName(BlobStoreError):
    """An object name is empty, too long or has a disallowed segment or character."""


class SignatureInvalid(BlobStoreError):
    """A presigned URL's signature is missing, malformed or does not verify."""


class SignatureExpired(BlobStoreError):
    """A presigned URL's signature verifies but its expiry time has passed."""
