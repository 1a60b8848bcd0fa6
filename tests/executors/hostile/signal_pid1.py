# expect: result PermissionError 1 alive
"""Signal pid 1 and every process (-1)."""

import os
import signal


def entrypoint(argv):
    out = []
    for pid in (1, -1):
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError as e:
            out.append(f"{type(e).__name__} {e.errno}")
    return " ".join(sorted(set(out))) + " alive"
