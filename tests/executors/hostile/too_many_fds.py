# expect: result OSError 24
"""Open file descriptors until RLIMIT_NOFILE refuses."""

import os


def entrypoint(argv):
    fds = []
    try:
        for _ in range(100_000):
            fds.append(os.open("/dev/null", os.O_RDONLY))
    except OSError as e:
        return f"{type(e).__name__} {e.errno}"
    return "unlimited"
