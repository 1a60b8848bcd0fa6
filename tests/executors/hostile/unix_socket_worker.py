# expect: result PermissionError 1 FileNotFoundError
# args: {"path": "$UNIX_SOCKET"}
"""Connect to a unix socket the worker listens on: no socket(2), and the path is not mounted."""

import os
import socket


def entrypoint(argv):
    path = argv[1]
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        first = "connected"
    except OSError as e:
        first = f"{type(e).__name__} {e.errno}"
    try:
        os.stat(path)
        second = "visible"
    except OSError as e:
        second = type(e).__name__
    return f"{first} {second}"
