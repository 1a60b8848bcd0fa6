"""Wire protocol: protos, generated stubs, servers and certificates."""

from ._server import ErrorInterceptor, build_server, metadata_value
from ._tls import PemPair, api_certificate, key_pem

__all__ = [
    "ErrorInterceptor",
    "PemPair",
    "api_certificate",
    "build_server",
    "key_pem",
    "metadata_value",
]
