# expect: result bind:EPERM connect:EPERM pair:EPERM
"""Abstract unix sockets (no file needed) to reach a neighbour or the host: no socket(2) at all.

The network namespace is private too, and abstract names live in it."""

import errno
import socket


def entrypoint(argv):
    out = []
    for name, action in (
        ("bind", lambda s: s.bind("\0confide-sandbox-probe")),
        ("connect", lambda s: s.connect("\0/tmp/.X11-unix/X0")),
    ):
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            action(s)
            out.append(f"{name}:DONE")
        except OSError as e:
            out.append(f"{name}:{errno.errorcode[e.errno]}")
    try:
        socket.socketpair()
        out.append("pair:DONE")
    except OSError as e:
        out.append(f"pair:{errno.errorcode[e.errno]}")
    return " ".join(out)
