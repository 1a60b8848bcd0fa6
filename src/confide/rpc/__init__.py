"""Wire protocol: protos, generated stubs, servers and certificates."""

from ._server import ErrorInterceptor, build_server, metadata_value
from ._tls import PemPair, PlatformCA, api_certificate

__all__ = [
    "ErrorInterceptor",
    "PemPair",
    "PlatformCA",
    "api_certificate",
    "build_server",
    "metadata_value",
]
