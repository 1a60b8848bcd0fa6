"""Wire protocol: protos, generated stubs, servers and certificates."""

from ._health import ServerHealth
from ._server import ErrorInterceptor, RpcLoop, build_server, inline, metadata_value
from ._tls import PemPair, api_certificate, key_pem, pin_target_name

__all__ = [
    "ErrorInterceptor",
    "PemPair",
    "RpcLoop",
    "ServerHealth",
    "api_certificate",
    "build_server",
    "inline",
    "key_pem",
    "metadata_value",
    "pin_target_name",
]
