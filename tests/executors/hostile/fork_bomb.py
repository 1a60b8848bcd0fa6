# expect: result PermissionError 1
"""Fork bomb: clone without CLONE_THREAD is refused (EPERM)."""

import os


def entrypoint(argv):
    try:
        while True:
            os.fork()
    except OSError as e:
        return f"{type(e).__name__} {e.errno}"
