# expect: result PermissionError 1
"""Open a TCP socket to the outside: socket(2) is not on the seccomp allow-list."""

import socket


def entrypoint(argv):
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.connect(("1.1.1.1", 80))
    except OSError as e:
        return f"{type(e).__name__} {e.errno}"
    return "connected"
