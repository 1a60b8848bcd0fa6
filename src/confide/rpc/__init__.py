"""Wire protocol: protos, generated stubs, servers and certificates."""

from ._tls import PemPair, api_certificate, key_pem

__all__ = [
    "PemPair",
    "api_certificate",
    "key_pem",
]
