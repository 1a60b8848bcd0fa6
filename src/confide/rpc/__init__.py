"""Wire protocol: protos, generated stubs, servers and certificates."""

from ._server import ErrorInterceptor, RpcLoop, build_server, inline, metadata_value
from ._tls import PemPair, api_certificate, key_pem

__all__ = [
    "ErrorInterceptor",
    "PemPair",
    "RpcLoop",
    "api_certificate",
    "build_server",
    "inline",
    "key_pem",
    "metadata_value",
]
