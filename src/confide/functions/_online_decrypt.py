"""``builtin_online_decrypt``: AES-GCM-decrypt a base64 argument (empty AAD)."""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from confide.invocation import FunctionError

from ._args import Field, Kind, decode_arguments
from ._context import FunctionContext

__all__ = ["NAME", "run"]

NAME = "builtin_online_decrypt"

_FIELDS = (
    Field("key", Kind.STR),
    Field("nonce", Kind.STR),
    Field("encrypted_data", Kind.STR),
    Field("algorithm", Kind.STR),
)
_KEY_BYTES = {"aes128gcm": 16, "aes256gcm": 32}
_NONCE_BYTES = 12
_TAG_BYTES = 16


def _b64(field: str, text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise FunctionError(f"Invalid base64 in {field}") from e


def run(ctx: FunctionContext) -> str:
    """Decrypt ``encrypted_data`` (ciphertext ‖ tag) with ``key`` and ``nonce[:12]``.

    Raises:
        FunctionError: ``Cannot deserialize arguments``, ``Invalid algorithm``,
            ``decryption error``, ``base64 decoded error`` (plaintext not UTF-8),
            ``Invalid base64 in <field>``, ``Nonce too short: …`` (Teaclave panics, Q22).
    """
    args = decode_arguments(ctx.arguments, _FIELDS)
    key = _b64("key", args["key"])
    nonce = _b64("nonce", args["nonce"])
    data = _b64("encrypted_data", args["encrypted_data"])
    key_bytes = _KEY_BYTES.get(args["algorithm"])
    if key_bytes is None:
        raise FunctionError("Invalid algorithm")
    if len(nonce) < _NONCE_BYTES:
        raise FunctionError(f"Nonce too short: {len(nonce)} bytes, need {_NONCE_BYTES}")
    if len(key) != key_bytes or len(data) < _TAG_BYTES:
        raise FunctionError("decryption error")
    try:
        plaintext = AESGCM(key).decrypt(nonce[:_NONCE_BYTES], data, None)
    except InvalidTag as e:
        raise FunctionError("decryption error") from e
    try:
        return plaintext.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FunctionError("base64 decoded error") from e
