# expect: result gaierror
"""Resolve a host name (DNS exfiltration): no resolv.conf, no sockets."""

import socket


def entrypoint(argv):
    try:
        socket.getaddrinfo("example.com", 80)
    except OSError as e:
        return type(e).__name__
    return "resolved"
