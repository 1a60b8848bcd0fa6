"""``builtin-rsa-sign``: RSA PKCS#1 v1.5 SHA-256 signature of the ``data`` argument."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import load_der_private_key

from confide.invocation import FunctionError

from ._args import Field, Kind, decode_arguments
from ._context import FunctionContext

__all__ = ["NAME", "run"]

NAME = "builtin-rsa-sign"

_FIELDS = (Field("data", Kind.STR),)
# ring's RsaKeyPair::from_der accepts 2048..=4096-bit keys.
_MIN_BITS = 2048
_MAX_BITS = 4096
# DER SEQUENCE { INTEGER 0, INTEGER n, ... }: a PKCS#1 RSAPrivateKey starts with
# version 0 directly, while PKCS#8 nests an AlgorithmIdentifier after it.
_PKCS8_HINT = b"\x30\x0d\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01"


def run(ctx: FunctionContext) -> str:
    """Sign UTF-8 ``data`` with the PKCS#1 DER key in input ``rsa_key``; return base64.

    Raises:
        FunctionError: ``Cannot deserialize arguments``; ring's key errors
            ``InvalidEncoding``, ``TooSmall``, ``TooLarge``.
    """
    args = decode_arguments(ctx.arguments, _FIELDS)
    der = ctx.read_input("rsa_key")
    if _PKCS8_HINT in der[:32]:
        raise FunctionError("InvalidEncoding")  # ring wants PKCS#1, not PKCS#8
    try:
        key = load_der_private_key(der, password=None)
    except (ValueError, TypeError) as e:
        raise FunctionError("InvalidEncoding") from e
    if not isinstance(key, rsa.RSAPrivateKey):
        raise FunctionError("InvalidEncoding")  # not an RSAPrivateKey structure
    if key.key_size < _MIN_BITS:
        raise FunctionError("TooSmall")
    if key.key_size > _MAX_BITS:
        raise FunctionError("TooLarge")
    signature = key.sign(args["data"].encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")
