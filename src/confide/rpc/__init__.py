"""Wire protocol: protos, generated stubs, the conversions both ends share, certificates.

Servers (the gRPC adapters, their interceptor and serving loop, health and
reflection) are in ``confide.api``; this package is what a caller and a server
have in common.
"""

from ._addresses import MAX_ADDRESSES, address_list, failover_target
from ._staged import staged_from_proto, staged_to_proto
from ._tls import PemPair, api_certificate, key_pem, pin_target_name

__all__ = [
    "MAX_ADDRESSES",
    "PemPair",
    "address_list",
    "api_certificate",
    "failover_target",
    "key_pem",
    "pin_target_name",
    "staged_from_proto",
    "staged_to_proto",
]
