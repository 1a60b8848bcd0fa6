"""The blob store of the embedded default: ciphertext over HTTP(S) via presigned URLs.

Clients and workers move encrypted task files to and from ``confide serve``
without credentials of their own: the platform hands out presigned URLs
(:func:`presign_url`), each bound to one object, one method and an expiry.
See ``docs/file-agent.md``.
"""

from ._errors import BlobStoreError, InvalidObjectName, SignatureExpired, SignatureInvalid
from ._presign import presign_url, validate_object_name, verify_presigned
from ._server import BlobStore

__all__ = [
    "BlobStore",
    "BlobStoreError",
    "InvalidObjectName",
    "SignatureExpired",
    "SignatureInvalid",
    "presign_url",
    "validate_object_name",
    "verify_presigned",
]
